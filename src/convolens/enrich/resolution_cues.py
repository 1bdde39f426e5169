"""The resolution component's wording: cue patterns, example sentences and thresholds.

Kept apart from the decision logic in `resolution.py` (see its docstring for how the cues,
the semantic examples and the structure combine) because it is data a team reads and
extends, and the realtime alerts match the same cues without loading the component.
"""

from __future__ import annotations

import re

__all__ = [
    "CUES",
    "ESCALATION_KINDS",
    "EXAMPLES",
    "STATUSES",
    "THRESHOLDS",
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
