"""Resolution status and escalations: how a conversation ended, and whether it was escalated.

Support teams measure outcomes (solved on first contact, escalated, left hanging), and
most sources carry no outcome field, so it is read from the conversation itself. A
hybrid, because each part fails alone:

1. Cue patterns (`CUES`): regexes over lowercased text with one apostrophe, written
   around words rather than punctuation so unpunctuated ASR transcripts match too ("that
   worked thanks", "let me transfer you to billing"). Lowering keeps offsets, so evidence
   spans are exact. A regex table rather than spaCy's Matcher: the cues are fixed
   wordings, and character offsets without a parse are both exact and cheap.
2. Semantic similarity: the last `window` substantive turns (their shared, cached
   embeddings) against example sentences per category (`EXAMPLES`); sentence by sentence
   too if `sentence_turns` > 0, off by default: on 570 conversations (sample corpus and
   Twitter customer care) it changed one status and made the component ten times slower.
   all-MiniLM-L6-v2 cosines: paraphrases of an example reach ~0.6-0.9,
   unrelated support turns stay under ~0.55 ("Still crashes." 0.46 to the unresolved
   set, "My order hasn't arrived yet." 0.63 to the agent-solution set, which the role
   filter excludes). Thresholds are 0.6, 0.62 for agent escalations and 0.66 for
   transfers (any sentence naming a team or an email address reaches ~0.64 there). The
   cues catch the common wordings; the embeddings catch paraphrases.
3. Structure: trailing pleasantries ("Anything else?" / "No, that's all, bye") are set
   aside first; then who spoke last, the customer's final turns, and the agent-side turns
   after them (the tail). Also the trackers' `escalation_request` matches (semantic ones
   from similarity 0.65, as the tracker's own 0.55 admits "I tried eight times") and the
   ticket status of helpdesk imports (`conversation.meta["status"]`, or tags such as
   "status: solved"), which wins as the system of record.

Status rules, first that applies: the tail hands over (transfer, supervisor, agent
escalation) -> escalated, unless the agent only escalated internally and promised to come
back -> pending; the tail promises a follow-up -> pending; the customer's final turns
confirm ("that worked") -> solved, or unresolved if they go on "but ..." with nobody
answering; the tail asks a question (closings excluded) and the customer never replied,
in chat, email or ticket -> abandoned; the tail gives an answer or a fix -> solved (with
no confirmation: confidence 0.55, as helpdesks' "assumed resolution"); the customer's
final turns complain -> unresolved; they thank or acknowledge -> whatever the agent's
turns just before set (escalated, pending), else solved; otherwise unresolved. Then ticket
status solved/closed -> solved, pending/hold -> pending. `escalated` is true when the
conversation has an escalation event (a transfer that ended in a fix is solved and
escalated) or an "escalation" tag; a bot handing over to a person is labelled (a transfer
"by": "bot") but not counted, since every bot-first chat does it.

Internal notes are skipped: the customer never saw them. The cues are English; other
languages get only the structural and (English-trained) semantic parts.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.embeddings import (
    SentenceEmbedder,
    batch_utterance_embeddings,
    shared_embedder,
)
from convolens.model import Channel, Role

__all__ = [
    "CUES",
    "ESCALATION_KINDS",
    "EXAMPLES",
    "STATUSES",
    "ResolutionComponent",
    "ResolutionConfig",
    "find_cues",
]

STATUS_LABEL = "resolution.status"
ESCALATION_LABEL = "escalation"
STATUSES = ("solved", "escalated", "abandoned", "unresolved", "pending")
ESCALATION_KINDS = (
    "transfer",
    "supervisor",
    "repeat_contact",
    "agent_escalated",
    "complaint_threat",
)
HANDOFF = ("transfer", "supervisor", "agent_escalated")
POLITE = ("thanks", "ack")

# "[category side]" starts a group (side: customer, agent (agents and bots) or any); each
# line is a regex, and an indented line continues the one above. <NAME> expands to the
# building blocks below. Within one text, earlier groups win overlaps: a supervisor
# escalation is not also a transfer, "thanks for nothing" is not also thanks.
_PARTS = {
    "FUT": r"(?:i'?ll|i will|we'?ll|we will|i'?m going to|i am going to|we'?re going to|let me"
    r"|let us|i can|we can|i'?m gonna)",
    "PAST": r"(?:i'?ve|i have|we'?ve|we have|i|we)(?:\s+(?:just|now|already|also|gone ahead and))?",
    "BOSS": r"(?:manager|supervisor|team ?lead(?:er)?|superior|boss)",
    "TEAM": r"(?:team|department|dept|desk|specialists?|experts?|colleagues?|support|tier ?\d"
    r"|level ?\d|engineers?|engineering|developers?)",
    "WHO": r"(?:i|we|they|engineering|the team|our team|(?:our|the)\s+[a-z]+(?:\s+[a-z]+)?\s+team"
    r"|(?:our|the) (?:engineers|developers))",
    "DM": r"(?:dms?|direct messages?|private messages?|pms?)",
    "ORD": r"(?:second|third|fourth|fifth|sixth|\d+(?:st|nd|rd|th))",
}
CUES = r"""
[supervisor customer]
\b(?:speak|talk|chat)\s+(?:to|with)\s+(?:a|an|the|your|my)?\s*
    (?:<BOSS>|someone (?:senior|higher up|in charge))\b
\b(?:get|put|bring)\s+(?:me\s+)?(?:a|your|the)\s+<BOSS>\b
\b(?:want|need|demand|request|ask(?:ing)? for)\s+(?:a|your|the|to see a|to see your)\s+<BOSS>\b
\b(?:please\s+)?escalate\s+(?:this|it|my (?:case|issue|complaint|ticket))\b
[supervisor agent]
\b<FUT>\s+(?:get|bring in|loop in|involve|call over|fetch|ask)\s+(?:my|a|our)\s+<BOSS>\b
\b(?:bringing|looping|getting)\s+(?:in\s+)?(?:my|a|our)\s+<BOSS>\b
\bescalat(?:e|ing|ed)\s+(?:this|it|your [a-z]+\s+)?\s*to\s+(?:my|a|our|the)\s+<BOSS>\b
\b<PAST>\s+(?:notified|informed|told|let)\s+my\s+<BOSS>\b
[agent_escalated agent]
\b(?:i'?m|i am|we'?re|we are)\s+escalating\b
\b<PAST>\s+escalated\b
\b<FUT>\s+escalate\b
\b(?:<PAST>|<FUT>|i'?m|we'?re)\s+(?:raised?|raising|opened|open|opening|created?|creating|filed?
    |filing|logged|log|logging|submitted|submit)\s+(?:a|an)\s+(?:new\s+|internal\s+|urgent\s+)?
    (?:ticket|case|bug(?: report)?|incident|issue|request|report)\s+(?:with|for|to)\s+(?:our|the)
    \b[^.?!\n]{0,30}
\b<PAST>\s+(?:flagged|reported|raised)\s+(?:this|it)\s+(?:to|with)\s+(?:our|the)\b[^.?!\n]{0,30}
\b(?:pass(?:ing|ed)?|forward(?:ing|ed)?|hand(?:ing|ed)?|refer(?:ring|red)?|assign(?:ing|ed)?
    |send(?:ing)?|sent)\s+(?:this|it|your (?:case|issue|ticket|request|report|query|problem))\s+
    (?:on\s+|over\s+|up\s+)?to\s+(?:our|the|my|a)\s+(?:[a-z0-9-]+\s+){0,3}<TEAM>\b
\b(?:adding|added|attaching|attached|linking|linked)\s+(?:this|it|your (?:account|ticket|case
    |report))\s+to\s+(?:the|our|an?)\s+(?:[a-z]+\s+)?(?:bug|incident|issue)\b
[transfer agent]
\b<FUT>\s+(?:transfer|connect|put|pass|route|forward|hand)\s+you\s+(?:over\s+|through\s+|back\s+)?
    (?:to|with)\b[^.?!\n]{0,40}
\b(?:transferring|connecting|routing|forwarding|passing|handing)\s+you\s+(?:over\s+)?(?:to|with)
    \b[^.?!\n]{0,40}
\b(?:reach out to|contact|get in touch with|call|speak (?:to|with)|talk to|chat with)\s+
    (?:our|the)\s+(?:[a-z0-9-]+\s+){0,3}<TEAM>\b
\b(?:send|shoot|drop|dm)\s+(?:us|me)\s+(?:a\s+)?<DM>\b
\b<DM>\s+us\b
\b(?:via|in|through|over|by)\s+(?:a\s+)?<DM>\b
(?:\bplease\s+|\byou(?:'ll| will)?\s+(?:can|could|may|need to|should)\s+|\bto\s+|^|[.!:]\s+)
    (?:submit|open|file|create|raise|log|make)\s+(?:a|an)\s+(?:support\s+|online\s+|new\s+)?
    (?:ticket|request|case|report form|form)\b
\b(?:send|drop|shoot)\s+us\s+an?\s+(?:email|e-mail)\b
\b(?:need to|have to|should|please|recommend|suggest|best (?:next )?step is to|you can|you could
    |feel free to)\s+(?:\w+\s+)?(?:contact|get(?:ting)? in touch with|reach(?:ing)? out to
    |call(?:ing)?|speak(?:ing)? (?:to|with)|talk(?:ing)? to)\b
\b(?:share|send|submit|report)\s+(?:your|it|this|them)\b[^.?!\n]{0,30}\b(?:with|to)\s+(?:our|the)\s+(?:[a-z0-9-]+\s+){0,3}
    <TEAM>s?\b
\b(?:help|assist) you one[- ]on[- ]one\b
https?://\S*(?:contact|requests/new|submit-?a-?request|/ticket)\S*
\bcontact\s+(?:us|support|our support)\s+(?:directly\s+)?(?:at|via|through|here|by|using|on|from)\b
\b(?:call|ring|phone)\s+us\s+(?:at|on)\b
\b(?:from\s+(?:our\s+|the\s+)?(?:tier ?\d|level ?\d|[a-z]+ team)
    |(?:our|the|a)\s+(?:[a-z]+\s+)?<TEAM>)\s+will\s+(?:pick (?:it|this|your \w+) up
    |take (?:it|this) over|take over|handle (?:it|this))\b
[transfer customer]
\b(?:transfer|connect|put)\s+me\s+(?:through\s+)?(?:to|with)\b[^.?!\n]{0,40}
\b(?:get|give)\s+me\s+(?:a\s+)?(?:real\s+)?(?:person|human|agent|someone)\b
\b(?:speak|talk)\s+(?:to|with)\s+(?:a\s+)?(?:real\s+)?(?:person|human)\b
[repeat_contact customer]
\b(?:this|that|it)(?:'s|\s+is)\s+(?:the|my)\s+<ORD>\s+time\b
\bfor\s+the\s+<ORD>\s+time\b
\b<ORD>\s+time\s+(?:this|in a|in the last)\s+(?:week|month|year|few)\b
\b(?:called|contacted|emailed|messaged|written to|reached out to|spoken to|talked to|chatted with)
    \s+(?:you|you guys|support|your (?:team|support|agents?)|customer service)\s+(?:\w+\s+){0,3}?
    (?:twice|\w+ times|repeatedly|again and again)\b
\b(?:i'?ve|i have|we'?ve|we have)\s+(?:already\s+)?(?:called|contacted|emailed|messaged|written
    |reached out|been in touch)\s+(?:\w+\s+){0,3}?(?:twice|\w+ times|repeatedly|again and again)\b
\b(?:i'?ve|i have|i)\s+already\s+(?:explained|told you|been through)\b
\bevery time i (?:call|contact|write|chat)\b
\bkeep (?:having to )?(?:calling|contacting|chasing|explaining)\b
[complaint_threat customer]
\b(?:file|filing|make|making|lodge|lodging|submit|raise)\s+(?:a\s+)?(?:formal\s+|official\s+)?
    complaint\b
\breport(?:ing)?\s+(?:you|this|your company)\s+to\b
\b(?:better business bureau|bbb|ombudsman|trading standards|cfpb)\b
\b(?:my\s+)?(?:lawyer|attorney|solicitor)\b|\blegal action\b|\b(?:sue|suing)\s+(?:you|your)\b
\b(?:take|taking)\s+(?:my|our)\s+business\s+elsewhere\b
\b(?:switch(?:ing)?|mov(?:e|ing)|go(?:ing)?)\s+(?:over\s+)?to\s+(?:a\s+)?(?:another|a different
    |other|your)\s+(?:provider|company|vendor|bank|carrier|competitor|service)\b
\bnever\s+(?:use|buy|order|shop|fly|book)\w*\s+(?:from\s+|with\s+)?(?:you|this|your)\b
\b(?:if|unless)\b[^.?!\n]{0,60}(?:n't|\bnot\b|\bno\b)[^.?!\n]{0,60}
    \b(?:cancel|leave|switch|complain|sue|chargeback)\w*
\b(?:chargeback|dispute the charge)\b
\b(?:leave|write|post)\s+(?:a\s+)?(?:bad|negative|terrible|1[- ]star|one[- ]star)\s+review\b
\b(?:post|posting|share|sharing)\s+(?:this|it|about this)\s+(?:on|all over)\s+
    (?:social media|twitter|facebook|reddit)\b
[confirm customer]
\b(?:that|this|it)\s+(?:worked|works now|did it|did the trick|fixed it|solved it|sorted it)\b
\b(?:it'?s|it is|that'?s|that is|everything'?s|everything is|all)\s+(?:working|fixed|resolved
    |solved|sorted|good|fine)\s+(?:now|again)\b
\b(?:works|working)\s+(?:now|again|perfectly)\b
\b(?:problem|issue)\s+(?:is\s+|has been\s+|'s\s+)?(?:solved|resolved|fixed|sorted|gone)\b
\b(?:i'?m|we'?re|i am|we are)\s+all\s+(?:set|good|sorted)\b
\b(?:i|we)\s+(?:can|could|was able to|were able to)\s+(?:finally\s+)?(?:log ?in|login|sign ?in
    |access|see|open|download|connect|use)\b[^.?!\n]{0,40}?\b(?:now|again)\b
\b(?:got it|have it)\s+working\b|\bup and running\b
\bno more\s+(?:crash|crashes|errors?|problems?|issues?)\b
\b(?:it'?s|it is|it has been|it'?s been)\s+(?:updated|fixed|resolved|restored)\b
[unresolved customer]
\bstill\s+(?:not|doesn'?t|does not|isn'?t|is not|won'?t|can'?t|cannot|haven'?t|have not|hasn'?t
    |didn'?t|no|broken|crash\w*|fail\w*|getting|having|the same|down|nothing)\b
\b(?:didn'?t|did not|doesn'?t|does not|won'?t|wasn'?t)\s+(?:work|help|fix|solve|resolve
    |change anything|make any difference)\b
\bnot\s+(?:fixed|resolved|solved|working|helpful|happy|satisfied|acceptable|good enough)\b
\b(?:useless|ridiculous|unacceptable|pathetic|a joke|waste of (?:my |our )?time|terrible service
    |awful service|worst (?:service|support|company|customer service))\b
\b(?:forget it|i give up|thanks for nothing|don'?t bother)\b
\b(?:you|your (?:team|agents?|support|company))\s+(?:haven'?t|hasn'?t|have not|has not|never
    |didn'?t|did not)\s+(?:\w+\s+)?(?:helped|help|fixed|fix|solved|solve|resolved|listened|listen
    |answered|responded|replied|got back|get back)\b
\b(?:nobody|no one|no-one)\s+(?:has\s+|have\s+|is\s+|ever\s+)?(?:helped|helping|fixed|solved
    |answered|responded|replied|got back|gotten back|listens|listening|told)\b
\b(?:i'?m|i am|we'?re|we are)\s+(?:so\s+|really\s+|completely\s+)?(?:done with|fed up|sick of
    |tired of|furious|disgusted|livid|not happy|unhappy)\b
[thanks customer]
\b(?:thanks|thank you|thx|tysm|cheers|much appreciated|appreciate (?:it|that|your help|the help))\b
    (?!\s+(?:in advance|for (?:nothing|any help|your help in advance)))
[ack customer]
^\W*(?:ok(?:ay)?|k|great|perfect|awesome|cool|fine|alright|got it|sounds good|understood|noted
    |sure|will do|yes|yep|brilliant)\b
[\U0001F44D\U0001F44C\U0001F64F\U0001F642\U0001F60A\u2705]
[pending agent]
\b(?:<FUT>|someone (?:from [^.?!\n]{0,30} )?will|(?:our|the) [a-z ]{0,30}team will|they'?ll
    |they will|s?he'?ll|s?he will)\s+(?:\w+\s+)?(?:get back to you|follow up|update you
    |let you know|keep you\s+
    (?:posted|updated|informed)|be in touch|reach out|circle back|email you|call you|contact you
    |update (?:this |the |your )?(?:ticket|case|thread)|send you (?:an? )?(?:update|email))
\b(?:get back to you|follow up|update you|respond|reply|hear back|be in touch)\s+(?:with you\s+)?
    (?:within|by|in|before|no later than)\s+(?:the\s+)?(?:\d+|a|an|one|two|three|tomorrow|today
    |monday|tuesday|wednesday|thursday|friday|end of|next|eod|cob)\b
\b(?:once|as soon as|when)\s+<WHO>\s+(?:\w+\s+)?(?:reply|replies|respond|responds|hears? back
    |gets? back|ha(?:ve|s) an update|know more|ha(?:ve|s) more|find out|confirms?|fix(?:es)?
    |releases?|ships?|is live|goes live)\b
\b(?:you'?ll|you will)\s+(?:\w+\s+)?(?:receive|get|hear)\s+(?:back\s+)?(?:an?\s+)?(?:email|call
    |update|response|reply|news|from (?:us|them|me|our))\b
\ballow\s+(?:up to\s+)?(?:\d+|a few|one|two|three)(?:[-–]\d+)?\s+(?:business\s+|working\s+)?
    (?:hours|days|weeks)\b
\byou'?ll\s+(?:have|get)\s+(?:it|them|the (?:report|update|answer|details|results?|summary
    |analysis))\s+(?:by\s+|on\s+|before\s+)?(?:tomorrow|today|monday|tuesday|wednesday|thursday
    |friday|next|the end|end of)\b
\bwait(?:ing)?\s+(?:on|for)\s+(?:engineering|the team|our team|a response|an update
    |the developers|our engineers)\b
[solution agent]
\b<PAST>\s+(?:processed|issued|refunded|reset|fixed|updated|changed|corrected|resolved|unlocked
    |re-?enabled|enabled|disabled|removed|cancell?ed|turned (?:off|on)|applied|credited|sent|added
    |restored|reactivated|waived|moved|re-?sent|upgraded|reversed|approved|shipped|replaced|cleared
    |flagged|scheduled|booked)\b
\b(?:it|this|that|the (?:issue|problem|bug|refund|charge|fix)|your [a-z]+(?: [a-z]+)?)\s+(?:has
    |have|'s|is|was|were)\s+(?:now\s+)?(?:been\s+)?(?:fixed|resolved|sorted|processed|unlocked
    |restored|refunded|issued|reversed|credited|applied|shipped|corrected|deployed)\b
\byou'?re\s+(?:all set|good to go|all sorted)\b
\b(?:that|this)\s+should\s+(?:now\s+)?(?:fix|solve|resolve|sort|do it|work)\b
\b(?:here'?s|here is)\s+(?:how|a link|an article|the link|a guide|what to do)\b
\b(?:this|the following)\s+(?:article|guide|link|page)\b
\bhope (?:this|that) helps\b
\bgo to\s+[^.?!\n]{1,60}(?:>|\bthen\b|\band (?:click|select|choose|tap)\b)
https?://\S+
[closing any]
\b(?:is there\s+)?anything else\b[^.?!\n]{0,40}
\bhave a (?:great|good|nice|lovely|wonderful) (?:day|night|evening|weekend|one)\b
\b(?:you'?re|you are) (?:very |most )?welcome\b|\b(?:a |my )?pleasure(?: to help(?: you)?)?\b
\b(?:no|not a|not) problem\b
\b(?:glad|happy) (?:i|we) could help\b|\bhappy to help\b|\bglad (?:to hear|that helped|it worked)\b
\btake care\b|\b(?:survey|rate (?:this|our|your) \w+)\b
\blet (?:me|us) know if (?:that|this|it|you)\b[^.?!\n]{0,40}
\b(?:good)?bye(?: now| all)?\b|\bhave a good one\b|\byou too\b|\btalk (?:soon|then|tomorrow)\b
\b(?:no,?\s+)?that'?s (?:it|all)\b|\bnothing else\b|\b(?:see|speak to|talk to) you\b
"""


def _parse_cues(table: str) -> list[tuple[str, str, re.Pattern[str]]]:
    groups: list[tuple[str, str, list[str]]] = []
    for line in table.strip().splitlines():
        if line.startswith("[") and line.endswith("]") and " " in line:
            category, side = line[1:-1].split()
            groups.append((category, side, []))
        elif line.startswith("    "):
            groups[-1][2][-1] += line.strip()
        else:
            groups[-1][2].append(line)
    compiled = []
    for category, side, patterns in groups:
        for pattern in patterns:
            for name, part in _PARTS.items():
                pattern = pattern.replace(f"<{name}>", part)
            compiled.append((category, side, re.compile(pattern)))
    return compiled


_COMPILED = _parse_cues(CUES)
# A question put to the customer: "?" outside closings, or an unpunctuated question opening.
_QUESTION = re.compile(
    r"\?|(?:^|[.!\n]\s*)(?:could|can|would|do|does|did|are|is|have|has|what|which|when|where|how"
    r"|may)\s+(?:you|i|we|it|the|your|this|that|they)\b"
    r"|\bplease\s+(?:send|share|provide|confirm|tell|reply with|check)\b"
)
# After a confirmation, a remaining problem: "no more crash. One thing though: the map ..."
_CONTRAST = re.compile(
    r"\b(?:but|though|however|except)\b|\bone thing\b|\bonly (?:problem|issue)\b"
)
_URL = re.compile(r"(?:https?://|www\.)\S+")
_SENTENCE = re.compile(r"[^.!?\s][^.!?\n]*[.!?]*")
_WORD = re.compile(r"\w+")

EXAMPLES: dict[str, list[str]] = {
    "confirm": [
        "That worked, thank you so much!",
        "Great, it's fixed now.",
        "Perfect, that solved my problem.",
        "Yes, I can see it now, thanks for your help.",
        "All good now, everything is working again.",
        "Brilliant, that sorted it.",
    ],
    "unresolved": [
        "This still doesn't work and nobody is helping me.",
        "Forget it, I'll figure it out myself.",
        "This is useless, you haven't solved anything.",
        "What a waste of time, I'm done with this.",
        "That didn't fix anything, the problem is still there.",
        "I'm really unhappy with how this has been handled.",
    ],
    "pending": [
        "I'll get back to you by tomorrow with an update.",
        "We'll email you as soon as we hear back from the team.",
        "I'll follow up once I have more information.",
        "Please allow 24 to 48 hours for our team to review this.",
        "We'll let you know as soon as it's fixed.",
        "I'm waiting on a reply from engineering and will update you then.",
    ],
    "solution": [
        "I've processed your refund, it will show up in 3 to 5 business days.",
        "Your account has been unlocked, you can log in now.",
        "To do that, go to Settings and click Export.",
        "That should fix the problem.",
        "I've updated the shipping address on your order.",
        "You can find step-by-step instructions in this help article.",
    ],
    "transfer": [
        "Let me transfer you to our billing department.",
        "Please send us a direct message so we can look into your account.",
        "Please contact our support team through this form so they can help.",
        "I'm connecting you with a colleague who can help with this.",
        "The best next step is to get in touch with our specialist team.",
    ],
    "agent_escalated": [
        "I've escalated this to our engineering team.",
        "I've raised a ticket with our technical team to investigate.",
        "I'm passing your case on to our second-line support.",
        "I've flagged this with our developers as a priority.",
    ],
}
THRESHOLDS = {"confirm": 0.6, "unresolved": 0.6, "pending": 0.6, "solution": 0.6}
THRESHOLDS |= {"transfer": 0.66, "agent_escalated": 0.62}
_SEMANTIC_SIDE = {"confirm": "customer", "unresolved": "customer"}  # the rest: agent side
_META_STATUS = {"solved": "solved", "closed": "solved", "resolved": "solved"}
_META_STATUS |= {s: "pending" for s in ("pending", "hold", "on-hold", "on_hold", "waiting")}
_META_STATUS["escalated"] = "escalated"
_STATUS_TAG = re.compile(r"^(?:status|ticket[_ ]status|state)\s*[:=]\s*([a-z_ -]+?)\s*$")
_ESCALATION_TAGS = {"escalation", "escalated"}


class ResolutionConfig(BaseModel):
    """Options; unknown keys are errors so a typo does not silently keep a default."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    window: int = Field(default=4, ge=1, description="Last turns compared with the examples.")
    # Sentence embeddings cost as much as the turns' own (see the module docstring): when on,
    # only the last turns and their first sentences (8 covers an email's body).
    sentence_turns: int = Field(default=0, ge=0)
    max_sentences: int = Field(default=8, ge=1)
    thresholds: dict[str, float] = Field(default_factory=lambda: dict(THRESHOLDS))
    examples: dict[str, list[str]] = Field(default_factory=lambda: dict(EXAMPLES))
    async_channels: list[Channel] = Field(
        default_factory=lambda: [Channel.chat, Channel.email, Channel.ticket]
    )
    tracker_semantic_min: float = Field(default=0.65, ge=0, le=1)
    use_metadata: bool = True
    embedder: Any = None
    embedding_model: str | None = None


@dataclass
class Event:
    """One finding: a cue, semantic or tracker match of `category` in utterance `index`."""

    category: str
    index: int
    side: str
    evidence: Evidence
    confidence: float
    source: str
    text: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Prepared:
    kept: list[int]
    sides: dict[int, str]
    events: list[Event]
    core: list[int]  # kept turns without the trailing pleasantries
    window: list[int]
    bots: set[int]  # turns written by a bot
    pleasantries: set[int]  # turns that only thank, acknowledge or say goodbye


def _normalise(text: str) -> str:
    # Per-character lowering keeps offsets (a few characters lower to two); one apostrophe.
    chars = [c.lower() if len(c.lower()) == 1 else c for c in text]
    return "".join(chars).translate(str.maketrans("\u2019\u2018\u02bc`\u00b4", "'''''"))


def find_cues(text: str, side: str) -> list[tuple[str, int, int]]:
    """(category, start, end) of the cues in `text` said by someone on `side` ("any": all)."""
    lowered = _normalise(text)
    found: list[tuple[str, int, int]] = []
    for category, cue_side, pattern in _COMPILED:
        if side != "any" and cue_side not in (side, "any"):
            continue
        for match in pattern.finditer(lowered):
            start, end = match.span()
            if end > start and not any(s < end and start < e for _, s, e in found):
                found.append((category, start, end))
    return sorted(found, key=lambda f: f[1])


class ResolutionComponent(Component):
    """Labels each conversation with `resolution.status` and each escalation event."""

    name = "resolution"
    version = "1"
    # Its models and cue lists read English; other languages are skipped, not mislabelled.
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})
    requires: ClassVar[tuple[str, ...]] = ("tracker.match", "conversation.type")
    assigns: ClassVar[tuple[str, ...]] = (STATUS_LABEL, ESCALATION_LABEL)
    # Solved / escalated are about serving a customer: not for sales calls, meetings or
    # interviews, nor where no customer takes part.
    applies_to: ClassVar[frozenset[str] | None] = frozenset({"support", "other"})
    needs_customer: ClassVar[bool] = True
    description = "Solved / escalated / abandoned / unresolved / pending, and escalation events."

    def __init__(
        self, config: dict[str, Any] | None = None, *, embedder: SentenceEmbedder | None = None
    ) -> None:
        super().__init__(config)
        self.settings = ResolutionConfig.model_validate(self.config)
        self.embedder = (
            embedder or self.settings.embedder or shared_embedder(self.settings.embedding_model)
        )
        self.model_id = self.embedder.model_id
        taxonomy = {
            "cues": CUES,
            "examples": self.settings.examples,
            "thresholds": self.settings.thresholds,
        }
        digest = hashlib.sha256(json.dumps(taxonomy, sort_keys=True).encode()).hexdigest()
        self.taxonomy_version = digest[:12]
        examples = self.settings.examples
        self._categories = [c for c in examples if examples[c]]
        vectors = self.embedder.embed([e for c in self._categories for e in examples[c]])
        self._examples: dict[str, np.ndarray] = {}
        start = 0
        for category in self._categories:
            self._examples[category] = vectors[start : start + len(examples[category])]
            start += len(examples[category])

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        vectors = batch_utterance_embeddings(batch, self.embedder)
        prepared = [self._prepare(doc) for doc in batch]
        # Sentences of the window turns, embedded in one call for the whole batch.
        turns, most = self.settings.sentence_turns, self.settings.max_sentences
        segments = [
            _segments(doc, p.window[len(p.window) - turns :] if turns else [], most)
            for doc, p in zip(batch, prepared, strict=True)
        ]
        embedded = self.embedder.embed([s[3] for doc_segments in segments for s in doc_segments])
        out: list[list[Annotation]] = []
        offset = 0
        for doc, p, doc_vectors, doc_segments in zip(
            batch, prepared, vectors, segments, strict=True
        ):
            seg_vectors = embedded[offset : offset + len(doc_segments)]
            offset += len(doc_segments)
            if not p.kept:
                out.append([])
                continue
            p.events += self._semantic(doc, p, doc_vectors, doc_segments, seg_vectors)
            p.events += self._tracker_events(doc, p)
            p.events.sort(key=lambda e: (e.index, e.evidence.start_char))
            out.append(self._label(doc, p))
        return out

    def _prepare(self, doc: Doc) -> _Prepared:
        utterances = doc.conversation.utterances
        roles = {p.participant_id: p.role for p in doc.conversation.participants}
        kept = [i for i, u in enumerate(utterances) if not u.internal and u.text.strip()]
        known = any(r in (Role.customer, Role.agent, Role.bot) for r in roles.values())
        sides = {
            i: _side(roles.get(utterances[i].participant_id, Role.unknown), known) for i in kept
        }
        events: list[Event] = []
        for i in kept:
            text = utterances[i].text
            for category, start, end in find_cues(text, sides[i]):
                confidence = {"thanks": 0.6, "ack": 0.5, "closing": 0.5}.get(category, 0.9)
                evidence = Evidence(doc.utterance_ids[i], start, end)
                events.append(
                    Event(category, i, sides[i], evidence, confidence, "cue", text[start:end])
                )
        pleasantries = {i for i in kept if _pleasantry(utterances[i].text, events, i)}
        core = list(kept)
        while len(core) > 1 and core[-1] in pleasantries:
            core.pop()
        bots = {i for i in kept if roles.get(utterances[i].participant_id) == Role.bot}
        window = core[-self.settings.window :]
        return _Prepared(kept, sides, events, core, window, bots, pleasantries)

    def _label(self, doc: Doc, p: _Prepared) -> list[Annotation]:
        escalations = [e for e in p.events if e.category in ESCALATION_KINDS]
        status, reasons, confidence, decisive = _decide(doc, p, self.settings.async_channels)
        # A bot handing over to a person is routing, not an escalation: reported, not counted.
        escalated = any(e.index not in p.bots for e in escalations)
        if self.settings.use_metadata:
            status, reasons, confidence, tagged = _metadata(doc, status, reasons, confidence)
            escalated = escalated or tagged
        value = {
            "status": status,
            "reasons": reasons,
            "escalated": escalated,
            "escalation_kinds": sorted({e.category for e in escalations if e.index not in p.bots}),
        }
        evidence = list(dict.fromkeys(e.evidence for e in decisive))
        out = [Annotation(STATUS_LABEL, value, round(confidence, 4), None, evidence)]
        for e in escalations:
            value = {
                "kind": e.category,
                "text": e.text,
                "by": "bot" if e.index in p.bots else e.side,
                "source": e.source,
                **e.extra,
            }
            uid = e.evidence.utterance_id
            out.append(
                Annotation(ESCALATION_LABEL, value, round(e.confidence, 4), uid, [e.evidence])
            )
        return out

    def _semantic(
        self,
        doc: Doc,
        p: _Prepared,
        vectors: np.ndarray,
        segments: list[tuple[int, int, int, str]],
        seg_vectors: np.ndarray,
    ) -> list[Event]:
        """Window turns (or sentences of them) close to a category's examples, where no cue
        of that category fired in the turn."""
        utterances = doc.conversation.utterances
        candidates = [(i, 0, len(utterances[i].text), vectors[i]) for i in p.window]
        candidates += [(i, s, e, seg_vectors[n]) for n, (i, s, e, _) in enumerate(segments)]
        have = {(e.category, e.index) for e in p.events}
        best: dict[tuple[str, int], tuple[float, int, int]] = {}
        for i, start, end, vector in candidates:
            for category in self._categories:
                side = _SEMANTIC_SIDE.get(category, "agent")
                if (category, i) in have or p.sides[i] not in (side, "any"):
                    continue
                similarity = float((self._examples[category] @ vector).max())
                threshold = self.settings.thresholds.get(category, 0.6)
                if similarity >= threshold and similarity > best.get((category, i), (0.0,))[0]:
                    best[(category, i)] = (similarity, start, end)
        out = []
        for (category, i), (similarity, start, end) in best.items():
            evidence = Evidence(doc.utterance_ids[i], start, end)
            text = utterances[i].text[start:end].strip()
            extra = {"similarity": round(similarity, 4)}
            confidence = min(0.85, similarity)
            out.append(
                Event(category, i, p.sides[i], evidence, confidence, "semantic", text, extra)
            )
        return out

    def _tracker_events(self, doc: Doc, p: _Prepared) -> list[Event]:
        """The trackers component's `escalation_request` matches, as escalation events."""
        index = {uid: i for i, uid in enumerate(doc.utterance_ids)}
        out = []
        for a in doc.labels("tracker.match"):
            if not isinstance(a.value, dict) or a.value.get("tracker") != "escalation_request":
                continue
            i = index.get(a.utterance_id or "")
            if i is None or i not in p.sides or not a.evidence:
                continue
            semantic = a.value.get("match") == "semantic"
            if semantic and (a.confidence or 0) < self.settings.tracker_semantic_min:
                continue
            cue = str(a.value.get("phrase") or a.value.get("example") or "").lower()
            kind = "supervisor"
            if re.search(r"\btime\b|\bagain\b|calling", cue):
                kind = "repeat_contact"
            elif "complaint" in cue:
                kind = "complaint_threat"
            ev = a.evidence[0]
            if any(
                e.index == i
                and e.category in ESCALATION_KINDS
                and e.evidence.start_char < ev.end_char
                and ev.start_char < e.evidence.end_char
                for e in p.events
            ):
                continue  # the same words, already found by a cue
            text = doc.conversation.utterances[i].text[ev.start_char : ev.end_char]
            extra = {"tracker_match": a.value.get("match")}
            out.append(
                Event(kind, i, p.sides[i], ev, float(a.confidence or 0.6), "tracker", text, extra)
            )
        return out


def _side(role: Role, known: bool) -> str:
    if not known or role == Role.unknown:
        return "any"
    return "customer" if role == Role.customer else "agent"


def _segments(doc: Doc, window: list[int], most: int) -> list[tuple[int, int, int, str]]:
    """(utterance, start, end, text) of the sentences of window turns that have several."""
    out: list[tuple[int, int, int, str]] = []
    for i in window:
        text = doc.conversation.utterances[i].text
        sentences = [m for m in _SENTENCE.finditer(text) if len(m.group().split()) >= 2][:most]
        if len(sentences) > 1:
            out.extend((i, m.start(), m.end(), m.group().strip()) for m in sentences)
    return out


def _pleasantry(text: str, events: list[Event], index: int) -> bool:
    """A turn of thanks, acknowledgement or goodbye with no other cue and at most six other
    words (a name, "and your cat too"): "You too, Greg. Bye now." It decides nothing."""
    own = [e for e in events if e.index == index]
    if not own or any(e.category not in (*POLITE, "closing") for e in own):
        return False
    chars = list(text)
    for e in own:
        start, end = e.evidence.start_char, e.evidence.end_char
        chars[start:end] = " " * (end - start)
    return len(_WORD.findall("".join(chars))) <= 6


def _decide(
    doc: Doc, p: _Prepared, async_channels: list[Channel]
) -> tuple[str, list[str], float, list[Event]]:
    """(status, reasons, confidence, decisive events), reading the end of the conversation."""
    sides, core = p.sides, p.core
    trailing = [i for i in p.kept if i > core[-1]]
    customer = [i for i in core if sides[i] == "customer"]
    last_c = customer[-1] if customer else -1
    tail = [i for i in core if i > last_c and sides[i] == "agent"]
    # Agent pleasantries ("You're welcome!") do not end the customer's final run of turns.
    before = [i for i in core if i < last_c and sides[i] == "agent" and i not in p.pleasantries]
    final_run = [i for i in customer if i > (before[-1] if before else -1)]
    run_start = max([i for i in customer if before and i < before[-1]] or [-1])
    prev_agent_run = [i for i in before if i > run_start]
    if not customer and not tail:
        final_run = core[-2:]  # roles unknown: read the last turns whoever spoke

    def of(turns: list[int], *categories: str) -> list[Event]:
        chosen = set(turns)
        return [e for e in p.events if e.index in chosen and e.category in categories]

    def top(events: list[Event]) -> float:
        return max(e.confidence for e in events)

    # Only the last agent-side speaker's turns count: a bot's "connecting you with Support"
    # followed by the person who took over is no longer where the conversation stands.
    speaker = _last_speaker(doc, tail)
    handoff, pending = of(speaker, *HANDOFF), of(speaker, "pending")
    if handoff and not _kept_ownership(handoff, pending):
        reasons = [f"agent_{e.category.removeprefix('agent_')}" for e in handoff]
        reasons += ["agent_promised_follow_up"] if pending else []
        return "escalated", _unique(reasons), top(handoff), handoff + pending
    if pending:
        reasons = ["agent_promised_follow_up", *(["agent_escalated"] if handoff else [])]
        return "pending", reasons, top(pending), pending + handoff

    final = of(final_run, "confirm", "unresolved", "complaint_threat")
    strong = [e for e in final if e.category == "confirm"]
    negative = [e for e in final if e.category != "confirm"]
    if strong and (not negative or strong[-1].index >= negative[-1].index):
        confirmed = strong[-1]
        text = doc.conversation.utterances[confirmed.index].text
        rest = _normalise(text)[confirmed.evidence.end_char :]
        contrast = _CONTRAST.search(rest)
        if contrast is None:
            return "solved", ["customer_confirmed"], top(strong), strong
        if not tail:
            start = confirmed.evidence.end_char + contrast.start()
            end = confirmed.evidence.end_char + contrast.end()
            remaining = Event(
                "unresolved",
                confirmed.index,
                "customer",
                Evidence(doc.utterance_ids[confirmed.index], start, end),
                0.6,
                "cue",
                rest[contrast.start() : contrast.end()],
            )
            return (
                "unresolved",
                ["partially_resolved", "remaining_issue"],
                0.6,
                [confirmed, remaining],
            )

    polite = of(final_run, *POLITE) + [e for e in of(trailing, *POLITE) if e.side == "customer"]
    if tail:
        last = tail[-1]
        text = doc.conversation.utterances[last].text
        asks = _asks_question(
            text, [e for e in p.events if e.index == last and e.category == "closing"]
        )
        replied = any(sides[i] != "agent" for i in trailing)
        if asks and not replied and doc.conversation.channel in async_channels:
            question = Event("question", last, "agent", doc.whole(last), 0.75, "structure", text)
            return (
                "abandoned",
                ["agent_question_unanswered", "customer_stopped_replying"],
                0.75,
                [question],
            )
        solution = of(tail, "solution")
        after = [e for e in polite if e.index > last]  # thanks for the answer, not in advance
        if solution and not negative:
            if after:
                return "solved", ["agent_answered", "customer_thanked"], 0.7, solution + after
            return "solved", ["agent_answered_last", "no_customer_confirmation"], 0.55, solution
        if asks and not replied:
            question = Event("question", last, "agent", doc.whole(last), 0.5, "structure", text)
            return "unresolved", ["ended_on_agent_question"], 0.5, [question]

    if negative:
        return "unresolved", ["customer_dissatisfied"], top(negative), negative
    if polite:
        # "ok thanks" confirms nothing by itself: it accepts what the agent said just before.
        answered = speaker if tail else _last_speaker(doc, prev_agent_run)
        handed, promised = of(answered, *HANDOFF), of(answered, "pending")
        if handed and not _kept_ownership(handed, promised):
            return "escalated", ["agent_handed_over", "customer_acknowledged"], 0.7, handed + polite
        if promised:
            reasons = ["agent_promised_follow_up", "customer_acknowledged"]
            return "pending", reasons, 0.7, promised + polite
        thanked = any(e.category == "thanks" for e in polite)
        reason = "customer_thanked" if thanked else "customer_acknowledged"
        return "solved", [reason], 0.7 if thanked else 0.55, polite
    end_turn = core[-1]
    ev = Event("last", end_turn, sides[end_turn], doc.whole(end_turn), 0.4, "structure", "")
    if tail:
        return "unresolved", ["agent_spoke_last", "no_resolution_signal"], 0.4, [ev]
    return "unresolved", ["customer_spoke_last", "no_reply"], 0.5, [ev]


def _last_speaker(doc: Doc, turns: list[int]) -> list[int]:
    """The final run of `turns` written by the participant who wrote the last of them."""
    if not turns:
        return []
    utterances = doc.conversation.utterances
    who = utterances[turns[-1]].participant_id
    run: list[int] = []
    for i in reversed(turns):
        if utterances[i].participant_id != who:
            break
        run.insert(0, i)
    return run


def _kept_ownership(handoff: list[Event], pending: list[Event]) -> bool:
    """An agent who escalated internally and promised to come back still owns the case:
    that is pending (and escalated); a transfer or a supervisor takes it over."""
    return bool(pending) and all(e.category == "agent_escalated" for e in handoff)


def _asks_question(text: str, closings: list[Event]) -> bool:
    """Whether the turn asks the customer something, closings and links blanked out (a
    link's query string "?hl=en" is no question)."""
    chars = list(_URL.sub(lambda m: " " * len(m.group()), _normalise(text)))
    for e in closings:
        # Blank the closing and the punctuation right after it ("anything else?").
        end = e.evidence.end_char
        while end < len(chars) and chars[end] in "?!. ":
            end += 1
        chars[e.evidence.start_char : end] = " " * (end - e.evidence.start_char)
    return bool(_QUESTION.search("".join(chars)))


def _metadata(
    doc: Doc, status: str, reasons: list[str], confidence: float
) -> tuple[str, list[str], float, bool]:
    """Ticket status and tags from the source system: they record the outcome outright."""
    conversation = doc.conversation
    raw = conversation.meta.get("status")
    tags = [t.strip().lower() for t in conversation.source.tags]
    for tag in tags:
        match = _STATUS_TAG.match(tag)
        if raw is None and match:
            raw = match.group(1)
    tagged = bool(_ESCALATION_TAGS & set(tags))
    if tagged:
        reasons = _unique([*reasons, "tag:escalation"])
    if not isinstance(raw, str) or not raw.strip():
        return status, reasons, confidence, tagged
    ticket = raw.strip().lower()
    mapped = _META_STATUS.get(ticket)
    if mapped is None:
        # "open"/"new": the text decides; the reason records that the ticket is still open.
        return status, _unique([*reasons, f"ticket_status:{ticket}"]), confidence, tagged
    if mapped != status:
        reasons = [f"ticket_status:{ticket}", f"text_suggested:{status}", *reasons]
        return mapped, _unique(reasons), 0.9, tagged or mapped == "escalated"
    return status, _unique([f"ticket_status:{ticket}", *reasons]), max(confidence, 0.95), tagged


def _unique(items: list[str]) -> list[str]:
    return list(dict.fromkeys(items))
