"""Sentence rules for dialogue acts over spaCy dependency parses.

Rules rather than a classifier because transcripts often lack punctuation ("how do I
change my plan" is a question without its "?") and no permissively licensed dialogue-act
corpus is at hand to train one (MRDA and Switchboard are GPL: evaluation only). On MRDA
val they match a TF-IDF classifier trained on MRDA train (eval/dialogue_acts.py).

question: a sentence ending in "?", or a clause opening with interrogative syntax: a
  wh-word followed by an inverted auxiliary ("how do I", "which plan should I") or as (in)
  the subject of the main verb ("what happened", "which one is cheaper"), an auxiliary
  before its subject ("can you", "is there", "do you know"), or an indirect question
  ("I was wondering whether", "I'd like to know"). Clauses open at the sentence start,
  after ",;:-", after "i mean" and "you know" and after "the question is"; markers
  ("so", "okay") and stutters ("how how") are skipped. "when I log in it crashes" has no
  inversion and is no question.
commitment: a first-person subject ("I", "we", "our team", "someone" from staff) with
  "will"/"'ll"/"going to"/"gonna", "let me/us", "I'd be happy to", or staff's "I can" with
  an offer verb, on an action verb (not "be", "know", "think", ...); staff's "your refund
  will be processed" and "you'll receive an email" too. Not negated, not in a question,
  not inside an "if"/"when"/relative clause, not a past plan ("I was going to").
request: "can/could/would/will you V", "please V", an imperative (a base-form verb opening
  the sentence, no subject), "let me know", "I need/want you to V", "you should/need to V",
  "is it possible to V", "why don't you V"; "let's V", "we should V", "why don't we V" are
  joint requests.
follow-up: a commitment to contact again (call back, get back to you, follow up, email
  you, reach out, be in touch, let you know, ...), with the channel its verb or words name.
due: the DATE/TIME entity under the item's verbs with its preposition ("by Friday"), else
  "asap"/"end of day"/..., resolved by `resolve_due` relative to the utterance's time.
"""

from __future__ import annotations

import re
from datetime import date, datetime, timedelta
from typing import Any

from convolens.model import Role

__all__ = [
    "BACKCHANNEL",
    "QUESTION_MARK",
    "YES_NO",
    "analyse_sentence",
    "contact_channel",
    "due_phrase",
    "resolve_due",
]


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


def _pairs(text: str) -> dict[str, str | None]:
    """Parse 'call:phone reach:' into {"call": "phone", "reach": None}."""
    return {k: v or None for k, _, v in (item.partition(":") for item in text.split())}


WH = _words("what when where why who whom whose which how")
WH_CONTRACTED = _words("whats wheres hows whos whys")
OPEN_OPENERS = frozenset(
    {("how", "about"), ("what", "about"), ("what", "if"), ("why", "not"), ("how", "come")}
)
# Discourse openers skipped before testing a clause for interrogative or imperative form.
MARKERS = _words(
    "so well ok okay alright oh um uh hmm also then now and but or hi hey hello yeah yes no "
    "sorry actually anyway right sure great thanks please just like"
)
MARKER_PAIRS = frozenset({("i", "mean"), ("you", "know"), ("i", "guess")})
BREAKS = _words(", ; : - -- \u2014")
# Right after an auxiliary these are its subject however the parser attached them.
PRONOUN_SUBJECTS = _words("i you we they he she it there")
# Words between a wh-word and its auxiliary: "how much does", "which plan should".
WH_FILLERS = _words("much many long often far old soon kind of")
BACKCHANNEL = _words(
    "ok okay hmm um uh huh mhm uhhuh mm yeah yes no right sure great cool alright thanks thank "
    "you oh ah i see"
)
YES_NO = _words(
    "yes yeah yep yup no nope nah sure certainly absolutely definitely correct right exactly"
)
_INDIRECT = re.compile(
    r"\b(?:wonder(?:ing)?|curious)\s+(?:if|whether|why|what|how|when|where|who|which)\b"
    r"|\b(?:like|want|need)\s+to\s+know\b"
    r"|\bany\s+idea\s+(?:if|whether|why|what|how|when|where|who|which)\b",
    re.IGNORECASE,
)
QUESTION_MARK = re.compile(r"\?[\s!?.)\]\"'\u201d]*$")
FIRST_PERSON = _words("i we")
FUTURE_AUX = _words("will 'll ll shall \u2019ll")
GOING = _words("going gon gonna")
# Clauses that are conditions or backgrounds, not acts: "if we're going to segment it".
SUBORDINATORS = _words(
    "if unless whether when whenever once because as while though although before after until"
)
# Verbs that state or feel rather than do: "I'll be fine", "we'll see", "I'll think".
STATIVE = _words(
    "be know think believe guess suppose wonder want like love hate need seem feel hope mean "
    "bet miss see say remember"
)
# "I can ..." is an ability ("I can't log in", "I can see it") unless it offers a service.
OFFER_VERBS = _words(
    "send email call check look escalate refund help show forward arrange schedule set "
    "reset cancel update fix transfer process issue book waive credit"
)
# Fixed phrases in imperative form that ask nobody to do anything.
IMPERATIVE_EXCLUDE = _words("thank excuse pardon enjoy welcome mind guess say look listen see have")
REQUEST_MODALS = _words("can could would will")
STAFF = frozenset({Role.agent, Role.bot})
ON_BEHALF = _words("someone somebody they team technician engineer specialist supervisor manager")
# Contact verbs that make a commitment a follow-up, and the channel each implies.
CONTACT_VERBS = _pairs(
    "call:phone phone:phone ring:phone email:email e-mail:email mail:email text:sms "
    "message:chat write:email contact: reach: notify: inform:"
)
SEND_OBJECTS = _pairs(
    "email:email e-mail:email mail:email text:sms message: update: note: call:phone ring:phone"
)
# "get back to you", "follow up", "circle back", "touch base".
PARTICLE_CONTACT = frozenset(
    {("get", "back"), ("follow", "up"), ("circle", "back"), ("check", "back"), ("touch", "base")}
)
_CHANNEL_WORDS = (
    (re.compile(r"\b(?:e-?mail|mail|inbox)\b", re.I), "email"),
    (re.compile(r"\b(?:phone|call|ring)\b", re.I), "phone"),
    (re.compile(r"\b(?:text|sms)\b", re.I), "sms"),
    (re.compile(r"\b(?:chat|whatsapp|message)\b", re.I), "chat"),
)
_DUE_WORDS = re.compile(
    r"\b(?:asap|as soon as possible|right away|shortly|end of (?:the )?day|eod|cob|"
    r"close of business|later today|today|tonight|tomorrow)\b",
    re.IGNORECASE,
)
_DUE_PREPS = _words("by within before until till in on")
_NUMBERS = {"a": 1, "an": 1, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6}
_SAME_DAY = re.compile(
    r"^(?:end of (?:the )?day|eod|cob|close of business|today|tonight|later today|"
    r"this (?:morning|afternoon|evening))$"
)


def resolve_due(phrase: str, base: datetime | None) -> date | None:
    """The date a due phrase ("by Friday", "within 5 business days") names, from `base`.

    dateparser handles weekdays, "tomorrow", "next week", "in 5 days"; the phrases it
    does not know (business days, end of week/month, end of day) are computed here.
    """
    if base is None:
        return None
    text = phrase.lower().strip()
    text = re.sub(r"^(?:no later than|by|within|before|until|till|on|in)\s+", "", text)
    text = re.sub(r"^the\s+", "", text)
    today = base.date()
    if _SAME_DAY.match(text):
        return today
    business = re.match(r"^(\d+|\w+)\s+(?:business|working)\s+days?$", text)
    if business:
        count = _count(business.group(1))
        if count is None:
            return None
        day = today
        while count > 0:
            day += timedelta(days=1)
            count -= day.weekday() < 5
        return day
    if re.match(r"^end of (?:the |this )?week$", text):
        return today + timedelta(days=(4 - today.weekday()) % 7)
    if re.match(r"^end of (?:the |this )?month$", text):
        first_next = (today.replace(day=28) + timedelta(days=4)).replace(day=1)
        return first_next - timedelta(days=1)
    if re.match(r"^(?:\d+|a|an|a few|a couple of)\s+(?:hours?|days?|weeks?|months?)$", text):
        text = "in " + text.replace("a couple of", "2").replace("a few", "3")
    import dateparser

    settings: Any = {
        "RELATIVE_BASE": base.replace(tzinfo=None),
        "PREFER_DATES_FROM": "future",
        "RETURN_AS_TIMEZONE_AWARE": False,
    }
    found = dateparser.parse(text, languages=["en"], settings=settings)
    return found.date() if found is not None else None


def _count(word: str) -> int | None:
    return int(word) if word.isdigit() else _NUMBERS.get(word)


def _subject(verb: Any) -> Any | None:
    """The verb's subject, or that of the verb it is coordinated with ("I'll check and call")."""
    while True:
        subject = next((c for c in verb.children if c.dep_ in {"nsubj", "nsubjpass"}), None)
        if subject is not None or verb.dep_ != "conj" or verb.head.i == verb.i:
            return subject
        verb = verb.head


def _auxes(verb: Any) -> list[Any]:
    while True:
        found = [c for c in verb.children if c.dep_ in {"aux", "auxpass"}]
        if found or verb.dep_ != "conj" or verb.head.i == verb.i:
            return found
        verb = verb.head


def _first_conjunct(verb: Any) -> Any:
    while verb.dep_ == "conj" and verb.head.i != verb.i:
        verb = verb.head
    return verb


def _subordinate(verb: Any) -> bool:
    """In an "if"/"when"/... clause or a relative clause: background, not an act."""
    head = _first_conjunct(verb)
    return head.dep_ in {"relcl", "acl"} or any(
        c.dep_ == "mark" and c.lower_ in SUBORDINATORS for c in head.children
    )


def _negated(verb: Any) -> bool:
    """Negated, except in "why don't you ...", which suggests rather than denies."""
    head = _first_conjunct(verb)
    return any(c.dep_ == "neg" for c in [*head.children, *verb.children]) and not _why_not(head)


def _why_not(verb: Any) -> bool:
    window = verb.doc[max(verb.sent.start, verb.i - 4) : verb.i]
    return any(t.lower_ == "why" for t in window) and any(c.dep_ == "neg" for c in verb.children)


def _is_aux(token: Any) -> bool:
    """Modal, "be" (also existential "is there"), or auxiliary "do"/"have"."""
    if token.tag_ == "MD" or token.lemma_ == "be":
        return token.pos_ in {"AUX", "VERB"}
    return token.pos_ == "AUX" and token.lemma_ in {"do", "have"}


def _skip_markers(sent: Any, start: int) -> int:
    """First token at or after `start` that is no discourse marker ("so", "i mean") and no
    stutter ("how how", "is is": the first copy is skipped)."""
    doc, k = sent.doc, start
    while k < sent.end:
        token, nxt = doc[k], doc[k + 1].lower_ if k + 1 < sent.end else ""
        if (token.lower_, nxt) in MARKER_PAIRS:
            k += 2
        elif (
            token.lower_ in MARKERS
            or token.pos_ in {"INTJ", "PUNCT", "CCONJ"}
            or nxt == token.lower_
        ):
            k += 1
        else:
            break
    return k


def _clause_starts(sent: Any) -> list[int]:
    """Where a clause may start: the sentence start, after ",", ";", ":" or a dash, after
    "i mean" / "you know", or "the question is"; markers skipped."""
    doc, starts = sent.doc, [sent.start]
    for t in sent:
        prev = doc[t.i - 1].lower_ if t.i > sent.start else ""
        framed = t.lower_ == "is" and prev in {"question", "thing", "problem", "issue"}
        if t.text in BREAKS or (prev, t.lower_) in MARKER_PAIRS or framed:
            starts.append(t.i + 1)
    return list(dict.fromkeys(_skip_markers(sent, s) for s in starts if s < sent.end))


def _interrogative(sent: Any, k: int) -> str | None:
    """Question kind when the clause starting at token k is interrogative, else None."""
    doc = sent.doc
    if k >= sent.end:
        return None
    token, lower = doc[k], doc[k].lower_
    nxt = doc[k + 1].lower_ if k + 1 < sent.end else ""
    if lower in WH_CONTRACTED:
        return "wh"
    if (lower, nxt) == ("anything", "else"):
        return "open"
    if lower in WH:
        if (lower, nxt) in OPEN_OPENERS:
            return "open"
        kind = "open" if lower == "why" else "wh"
        # "what happened", "which one of these will do", "how many came": the wh-word is
        # (in) the main verb's subject. A bare "which" ("which means that ...", "which is
        # in the sheet") continues the previous statement instead; "which one" asks.
        node = token
        continuation = lower == "which" and k + 1 < sent.end and doc[k + 1].pos_ in {"VERB", "AUX"}
        for _ in range(3):
            subject = node.dep_ in {"nsubj", "nsubjpass"} and node.head.dep_ == "ROOT"
            if subject and not continuation:
                return kind
            if node.head.i == node.i:
                break
            node = node.head
        j = k + 1
        while (
            j < sent.end
            and j - k <= 4
            and (doc[j].lower_ in WH_FILLERS or doc[j].tag_ in {"NN", "NNS", "JJ", "DT", "RB"})
        ):
            j += 1
        if j < sent.end and _is_aux(doc[j]) and _inverted(doc[j], sent):
            if lower == "what" and " ".join(t.lower_ for t in doc[j : j + 3]) == "do you think":
                return "open"
            return kind
        return None
    if _is_aux(token) and _inverted(token, sent):
        return "alternative" if any(t.lower_ == "or" for t in doc[k : sent.end]) else "yes_no"
    return None


def _inverted(aux: Any, sent: Any) -> bool:
    """A subject follows the auxiliary closely with no verb between: "can you", "is there",
    "was the purchase made" (however the parser attached the noun phrase)."""
    near = [
        t
        for t in sent.doc[aux.i + 1 : min(sent.end, aux.i + 7)]
        if t.lower_ != aux.lower_ and t.dep_ != "neg"  # "is is that", "isn't it"
    ]
    if near and near[0].lower_ in PRONOUN_SUBJECTS:
        return True
    for s in near[:5]:
        if s.pos_ in {"VERB", "AUX"}:
            return False
        if s.dep_ in {"nsubj", "nsubjpass", "expl"} and s.head in (aux, aux.head):
            return True
        if s.pos_ in {"NOUN", "PROPN", "PRON"}:
            return s.dep_ not in {"npadvmod", "dobj"}
        if s.pos_ not in {"DET", "ADJ", "NUM", "ADV"} and s.dep_ not in {"poss", "compound"}:
            return False
    return False


def analyse_sentence(sent: Any, role: Role) -> dict[str, Any]:
    """The acts of one spaCy sentence: question (kind, start token), commitment verbs with
    confidences, request verbs with (confidence, joint). `role` is the speaker's: staff's
    "your refund will be processed" commits them, a customer's does not."""
    question: tuple[str, int] | None = None
    for k in _clause_starts(sent):
        kind = _interrogative(sent, k)
        if kind is not None:
            question = (kind, k)
            break
    if question is None and _INDIRECT.search(sent.text):
        question = ("indirect", _skip_markers(sent, sent.start))
    if question is None and QUESTION_MARK.search(sent.text):
        question = ("declarative", _skip_markers(sent, sent.start))
    commitments: list[tuple[Any, float]] = []
    requests: list[tuple[Any, float, bool]] = []
    first = _skip_markers(sent, sent.start)
    for verb in sent:
        if verb.pos_ not in {"VERB", "AUX"} or _negated(verb) or _subordinate(verb):
            continue
        found = _commitment(verb, role, question is not None)
        if found:
            commitments.append((verb, found))
            continue
        request = _request(verb, first, question is not None)
        if request:
            requests.append((verb, *request))
    return {"question": question, "commitments": commitments, "requests": requests}


def _commitment(verb: Any, role: Role, is_question: bool) -> float:
    """Confidence that `verb` is something the speaker commits to doing (0 if not)."""
    if verb.lemma_ in STATIVE and not _contact(verb, verb.sent.text)[0]:
        return 0.0
    if _idiom(verb):
        return 0.0
    head, subject = _first_conjunct(verb), _subject(verb)
    auxes = {a.lower_ for a in _auxes(verb)}
    lower = subject.lower_ if subject is not None else ""
    ours = subject is not None and (
        lower in FIRST_PERSON
        or any(c.lower_ == "our" for c in subject.children)
        # Staff commit their side too: "someone will call you", "my manager will email".
        or (
            role in STAFF
            and (lower in ON_BEHALF or any(c.lower_ == "my" for c in subject.children))
        )
    )
    if auxes & FUTURE_AUX and ours and not is_question:
        return 0.85
    # "I'm going to send", "we're gonna fix it"; not "I was going to" (a past plan).
    if head.dep_ == "xcomp" and head.head.lower_ in GOING and not is_question:
        going = head.head
        going_subject = _subject(going)
        past = any(a.lower_ in {"was", "were"} for a in _auxes(going))
        if going_subject is not None and going_subject.lower_ in FIRST_PERSON and not past:
            return 0.85
    # "let me check", "let us look into it"; "let me know" asks the other side instead.
    lets = head.dep_ in {"ccomp", "xcomp"} and head.head.lemma_ == "let" and verb.lemma_ != "know"
    if lets and any(c.lower_ in {"me", "us"} for c in [*head.head.children, *head.children]):
        return 0.8
    # "I'd be happy to help", "we're glad to refund it".
    if head.dep_ == "xcomp" and head.head.lemma_ in {"happy", "glad"}:
        be_subject = _subject(head.head.head)
        if be_subject is not None and be_subject.lower_ in FIRST_PERSON:
            return 0.7
    if role in STAFF and not is_question:
        own_can = any(c.dep_ == "aux" and c.lower_ == "can" for c in verb.children)
        if own_can and lower in FIRST_PERSON and verb.lemma_ in OFFER_VERBS:
            return 0.6  # "I can send you a new link"
        if auxes & FUTURE_AUX and subject is not None and lower not in FIRST_PERSON:
            passive = verb.tag_ == "VBN" and any(c.dep_ == "auxpass" for c in verb.children)
            if passive or (lower == "you" and verb.lemma_ in {"receive", "get", "hear"}):
                return 0.7  # "Your refund will be processed", "You'll receive an email"
    return 0.0


def _request(verb: Any, first: int, is_question: bool) -> tuple[float, bool] | None:
    """(confidence, joint) when `verb` asks the addressee (or everyone, joint) to act."""
    head, subject = _first_conjunct(verb), _subject(verb)
    lower = subject.lower_ if subject is not None else ""
    auxes = _auxes(verb)
    children = {c.lower_ for c in head.children}
    if head.lemma_ == "let" and head.dep_ in {"ROOT", "conj"} and children & {"'s", "\u2019s"}:
        return (0.7, True) if verb.i == head.i else None  # "let's go through it"
    if verb.lemma_ == "know":
        # "let me know", "let us know": the addressee is to tell the speaker. Not "I'll let
        # you know" (the speaker's commitment) nor "I hope to let you know".
        let = head.head
        lets = head.dep_ in {"ccomp", "xcomp"} and let.lemma_ == "let" and verb.i == head.i
        imperative = let.dep_ in {"ROOT", "conj"} and _subject(let) is None
        asks = any(t.lower_ in {"me", "us"} for t in [*let.children, *head.children])
        return (0.8, False) if lets and imperative and asks else None
    if verb.lemma_ in STATIVE - {"see", "say", "remember"} or _idiom(verb):
        return None
    # "may I have your name", "can I get a refund": the addressee is to give it.
    asks_for = lower == "i" and verb.lemma_ in {"have", "get", "ask"} and is_question
    if asks_for and any(a.lower_ in {"may", "can", "could"} and a.i < verb.i for a in auxes):
        return 0.7, False
    if _why_not(head) and lower in {"you", "we"}:
        return 0.7, lower == "we"  # "why don't you send it", "why don't we start"
    if lower == "you" and subject is not None:
        # "can you reset", "could you please escalate", "would you mind checking".
        if any(a.lower_ in REQUEST_MODALS and a.i < subject.i for a in auxes):
            return 0.85, False
        # "you should restart it"; not "should you ...?" nor "you should have seen it".
        perfect = any(a.lemma_ == "have" for a in auxes)
        if any(a.lower_ in {"should", "must"} and a.i > subject.i for a in auxes) and not perfect:
            return 0.6, False
    if lower == "we" and any(a.lower_ == "should" for a in auxes) and not is_question:
        return 0.6, True  # "we should move on"
    if "please" in {c.lower_ for c in verb.children} and lower in {"", "you"}:
        return 0.85, False
    if head.dep_ == "xcomp" and lower in {"", "you"}:
        governor = head.head
        governor_subject = _subject(governor)
        by = governor_subject.lower_ if governor_subject is not None else ""
        # "I need you to sign", "I'd like you to check": "you" is the object there.
        asked = any(c.lower_ == "you" for c in governor.children if c.dep_ in {"nsubj", "dobj"})
        if governor.lemma_ in {"need", "want", "like"} and asked and by in FIRST_PERSON:
            return 0.8, False
        if governor.lemma_ in {"need", "have"} and by == "you":
            return 0.6, False  # "you need to restart it", "you'll have to sign in again"
        if governor.lemma_ == "possible":
            return 0.7, False  # "is it possible to get a refund"
    imperative = head.tag_ == "VB" and not [a for a in auxes if a.lemma_ != "do"]
    if head.dep_ == "ROOT" and subject is None and imperative and head.i == first:
        return None if head.lemma_ in IMPERATIVE_EXCLUDE or head.lemma_ == "let" else (0.75, False)
    return None


def _idiom(verb: Any) -> bool:
    """Verb phrases that act on nothing: "look forward to", "take care"."""
    words = {c.lower_ for c in verb.children}
    return (verb.lemma_ == "look" and "forward" in words) or (
        verb.lemma_ == "take" and "care" in words
    )


def _contact(verb: Any, text: str) -> tuple[bool, str | None]:
    """(whether `verb` is contacting the other side again, the channel it implies)."""
    lemma = verb.lemma_
    children = {c.lower_ for c in verb.children}
    if lemma in CONTACT_VERBS or (lemma == "update" and "you" in children):
        return True, CONTACT_VERBS.get(lemma)
    if any((lemma, word) in PARTICLE_CONTACT for word in children):
        return True, None
    if lemma == "be" and "in touch" in text.lower():
        return True, None
    if lemma == "let" and any(c.lemma_ == "know" for c in verb.children):
        return True, None
    if lemma == "keep" and "you" in {t.lower_ for t in verb.subtree}:
        return True, None
    if lemma in {"send", "give", "drop", "shoot"}:  # "send you an email", "give you a call"
        for child in verb.children:
            if child.dep_ == "dobj" and child.lemma_ in SEND_OBJECTS:
                return True, SEND_OBJECTS[child.lemma_]
    return False, None


def contact_channel(verbs: list[Any], text: str) -> tuple[bool, str | None]:
    """Whether any of the item's verbs contacts again, and the channel (verb or words)."""
    contact, channel = False, None
    for verb in verbs:
        is_contact, implied = _contact(verb, text)
        contact = contact or is_contact
        channel = channel or implied
    if contact and channel is None:
        channel = next((c for pattern, c in _CHANNEL_WORDS if pattern.search(text)), None)
    return contact, channel


def due_phrase(verbs: list[Any], sent: Any) -> str | None:
    """The due phrase under the item's verbs ("by Friday"), else a due word in the sentence."""
    for ent in sent.ents:
        if ent.label_ not in {"DATE", "TIME"}:
            continue
        # The date must hang on the item's own verb: in "let me check what changed on
        # Friday" Friday dates the change, not the check.
        governor = ent.root.head
        while governor.pos_ not in {"VERB", "AUX"} and governor.head.i != governor.i:
            governor = governor.head
        if not any(governor.i == v.i for v in verbs):
            continue
        start = ent.start
        doc = sent.doc
        if start > sent.start and doc[start - 1].lower_ in _DUE_PREPS:
            start -= 1
        elif doc[max(sent.start, start - 3) : start].text.lower() == "no later than":
            start -= 3
        return str(doc[start : ent.end].text)
    match = _DUE_WORDS.search(sent.text)
    return match.group(0) if match else None
