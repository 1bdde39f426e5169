"""Turning what someone said into what a summary says: filler and greetings cut, first and
second person turned into the third ("I was charged twice" -> "the customer was charged
twice"), and the speaker named the way a reader knows them.

Rules over spaCy's parse (the shared pipeline, `nlp.parsed`): personal pronouns become
the speaker or the addressee, and a present-tense verb whose subject became a third person
takes its third-person form ("I have" -> "the customer has", "you need" -> "the agent
needs"). A sentence that is only filler ("Uh, good question. Hang on, let me check") or a
pleasantry is dropped; a lead-in ("So, honestly, ...") is cut from the ones kept.
"""

from __future__ import annotations

import re
from typing import Any

from convolens.model import Conversation, Role

__all__ = [
    "FILLER_SENTENCE",
    "LEAD_IN",
    "is_filler",
    "past_tense",
    "speaker_names",
    "strip_lead_in",
    "third_person",
    "third_singular",
]

# A whole sentence that carries nothing: backchannels, stalling, pleasantries, greetings.
FILLER_SENTENCE = re.compile(
    r"^\W*(?:(?:uh|um|er|erm|hmm+|mm+-?hmm|mhm|ah|oh|ooh|yeah|yep|yes|no|nope|okay|ok|"
    r"right|alright|all\s+right|sure|great|perfect|cool|nice|good|fine|wow|gosh|well|so|"
    r"hi|hello|hey|thanks?|thank\s+you(?:\s+(?:so|very)\s+much)?|you'?re\s+welcome|"
    r"bye|goodbye|cheers|sorry|excuse\s+me|of\s+course|exactly|absolutely|indeed|"
    r"got\s+it|i\s+see|fair\s+enough|sounds\s+good|that'?s\s+(?:fine|great|right|good|fair)|"
    r"good\s+(?:question|point|morning|afternoon|evening)|no\s+(?:problem|worries)|"
    r"hang\s+on|one\s+(?:sec(?:ond)?|moment)|just\s+a\s+(?:sec(?:ond)?|moment)|"
    r"let\s+me\s+(?:check|see|look|think)|appreciate\s+(?:it|that)|talk\s+soon|"
    r"have\s+a\s+(?:nice|great|good)\s+\w+|nice\s+to\s+meet\s+you|good\s+to\s+meet\s+you|"
    r"how\s+are\s+you(?:\s+doing)?(?:\s+today)?|i'?m\s+(?:fine|good|well)|"
    r"happy\s+(?:birthday|new\s+year|holidays)(?:\s+to\s+you)?|merry\s+christmas|congratulations|"
    r"welcome(?:\s+back)?|see\s+you(?:\s+(?:later|soon|tomorrow|then))?|take\s+care|"
    # Terms of address after a thank-you or a greeting ("Ok, thanks doctor").
    r"doctor|sir|madam|ma'?am|dear|honey|darling|buddy|guys|mate|everyone|everybody|"
    r"(?-i:[A-Z][a-z]+))[\s,.!?;:-]*)+$"
    # Stalling that runs on: "Hang on, let me check which export they use".
    r"|^\W*(?:uh,?\s*|um,?\s*)?(?:hang\s+on|one\s+sec|give\s+me\s+a\s+(?:sec|moment)|"
    r"give\s+me\s+a\s+minute|let\s+me\s+(?:check|see|look|double[-\s]check|think))\b",
    re.IGNORECASE,
)
# What opens a sentence without saying anything: cut, the rest kept.
LEAD_IN = re.compile(
    r"^(?:\W*(?:uh+|um+|er+|erm|hmm+|mm+|ah|oh|yeah|yep|yes|okay|ok|right|alright|so|well|"
    r"and|but|honestly|actually|basically|anyway|now|look|listen|sure|great|perfect|"
    r"cool|you\s+know|i\s+mean|like|hi|hello|hey|thanks|thank\s+you|honey|darling|dear|"
    r"sweetheart|sir|madam|ma'?am|mom|mum|dad|buddy|guys|folks|man|boss|doctor|"
    r"excuse\s+me|sorry|please|oh\s+my\s+god|gosh|wow)\b[\s,.!-]*)+",
    re.IGNORECASE,
)
_FUNCTION_WORDS = {"Manager", "Interface", "Expert", "Designer", "Marketing", "Industrial",
                   "User", "Project", "Professor", "Lead", "Engineer", "Chair", "Member",
                   "Speaker", "Host", "Guest", "Team", "Support", "Agent", "Customer"}  # fmt: skip
_CONTRACTED = {"'m": "am", "'re": "are", "'ve": "have", "'ll": "will", "'d": "would"}
_IRREGULAR = {"have": "has", "do": "does", "am": "is", "are": "is", "were": "was"}


def is_filler(text: str) -> bool:
    """Whether the sentence says nothing a summary could use."""
    return bool(FILLER_SENTENCE.match(text)) or len(re.findall(r"[A-Za-z]+", text)) < 2


_VOCATIVE_END = re.compile(
    r",\s*(?:sir|madam|ma'?am|honey|darling|dear|mom|mum|dad|buddy|guys|man|#\w+#|"
    r"(?-i:[A-Z][a-z]+\.?(?:\s+(?-i:[A-Z][a-z]+))?))\s*(?=[.!?]*$)",
    re.IGNORECASE,
)
# A stage direction opening a turn: "(Pointing to the menu) I'll take this".
_STAGE_DIRECTION = re.compile(r"^\s*[(\[][^)\]]{0,80}[)\]]\s*")


def strip_lead_in(text: str) -> str:
    """`text` without its opening filler words nor a closing term of address."""
    rest = LEAD_IN.sub("", _STAGE_DIRECTION.sub("", text, count=1), count=1).strip()
    rest = _VOCATIVE_END.sub("", rest)
    if not rest or len(rest) < len(text) // 3:
        return text.strip()
    return rest[0].upper() + rest[1:]


_TITLE = r"(?:(?:Mr|Mrs|Ms|Dr)\.?\s+|Miss\s+|Doctor\s+|Professor\s+)?"
# "Julia, could you ...", "Hi Tom.", "... for you, Mr. Smith." name the one addressed.
_VOCATIVE_START = re.compile(
    r"^(?:(?:hi|hello|hey|thanks|thank\s+you|good\s+(?:morning|afternoon|evening)|excuse\s+me|"
    r"oh|well|yes|no|sorry|welcome)[,!]?\s+)?(" + _TITLE + r"(?-i:[A-Z][a-z]+))\s*[,!?.]",
    re.IGNORECASE,
)
_ADDRESS_END = re.compile(r",\s+(" + _TITLE + r"(?-i:[A-Z][a-z]+))\s*[.!?]*$")
_SELF = re.compile(r"\bmy\s+name\s+is\s+(" + _TITLE + r"(?-i:[A-Z][a-z]+))", re.IGNORECASE)
_NOT_A_NAME = {
    "I", "Yes", "No", "Well", "Oh", "Okay", "Ok", "Sure", "Please", "Sorry", "Thanks", "Hello",
    "Hi", "Hey", "Excuse", "Good", "Great", "Really", "What", "Why", "How", "Let", "Wow",
    "Honey", "Darling", "Dear", "Sir", "Madam", "Mom", "Dad", "Mum", "Waiter", "Doctor", "God",
    "Man", "Boss", "Look", "Listen", "Right", "Alright", "So", "Now", "Then", "Here", "There",
    "Anyway", "Fine", "Perfect", "Cool", "Nice", "Me", "You", "Yeah", "Yep", "Uh", "Um",
    "Ah", "Hmm", "Mm", "Certainly", "Absolutely", "Exactly", "Indeed", "Thank", "Bye",
    "Goodbye", "Sweetheart", "Guys", "Everyone", "Everybody", "Officer", "Ma", "Mommy",
    "Daddy", "Grandma", "Grandpa", "Son", "Kid", "Kids", "Buddy", "Friend", "Waitress",
    "Operator", "Teacher", "Miss", "Mr", "Mrs", "Ms", "Dr", "Is", "Are", "Do", "Does", "Can",
    "Will", "Would", "Could", "Should", "Did", "Have", "Has", "Of", "Not", "Just", "Wait",
}  # fmt: skip


def _titled(name: str) -> bool:
    return len(name.split()) > 1


def _known_first(name: str) -> bool:
    from convolens.enrich.pii.detect import first_names

    return name.lower() in first_names()


def _learned_names(conversation: Conversation) -> dict[str, str]:
    """Names the dialogue gives its two unnamed speakers: the one addressed by a vocative
    ("Julia, ..."), the one who says "my name is ...". Only in two-party conversations."""
    speakers = list(dict.fromkeys(u.participant_id for u in conversation.utterances))
    if len(speakers) != 2:
        return {}
    votes: dict[str, dict[str, int]] = {p: {} for p in speakers}
    for u in conversation.utterances:
        other = speakers[1] if u.participant_id == speakers[0] else speakers[0]
        text = u.text.strip()
        # A capitalised word before a comma is often not a name ("Maybe, ...", "Snakes!"):
        # one without a title must be a known first name to count as a vocative.
        found = [(other, m.group(1)) for m in (_VOCATIVE_START.match(text),) if m]
        found += [(other, m.group(1)) for m in (_ADDRESS_END.search(text),) if m]
        found = [(who, name) for who, name in found if _titled(name) or _known_first(name)]
        found += [(u.participant_id, m.group(1)) for m in (_SELF.search(text),) if m]
        for who, name in found:
            if name.split()[-1] not in _NOT_A_NAME:
                votes[who][name] = votes[who].get(name, 0) + 1
    out: dict[str, str] = {}
    for who, counted in votes.items():
        if counted:
            name = max(counted, key=lambda n: counted[n])
            if name not in out.values():
                out[who] = name
    return out


def speaker_names(conversation: Conversation) -> dict[str, str]:
    """How a summary names each participant: their name, else their role ("the customer"),
    else the name the others call them by, else their id (DialogSum's "#Person1#")."""
    out: dict[str, str] = {}
    learned = _learned_names(conversation)
    roles = [p.role for p in conversation.participants]
    counted: dict[str, int] = {}
    for p in conversation.participants:
        if p.name and not p.name.startswith(("<", "Speaker ")):
            # "Dana Ruiz" -> "Dana"; a function ("Project Manager") stays whole.
            words = p.name.split()
            personal = len(words) == 2 and not set(words) & _FUNCTION_WORDS
            out[p.participant_id] = words[0] if personal else p.name
        elif p.role in (Role.customer, Role.agent) and roles.count(p.role) == 1:
            out[p.participant_id] = f"the {p.role.value}"
        elif p.role == Role.bot:
            out[p.participant_id] = "the bot"
        elif p.participant_id in learned:
            out[p.participant_id] = learned[p.participant_id]
        elif _PSEUDONYM.match(p.participant_id):
            # Intake redaction turned an id that spelled a name into "customer-830b1fd0a7":
            # no one reads that as a person. Number them by role, as they first appear.
            label = _ROLE_LABEL.get(p.role, "Participant")
            counted[label] = counted.get(label, 0) + 1
            out[p.participant_id] = f"{label} {counted[label]}"
        else:
            out[p.participant_id] = p.participant_id
    return out


_PSEUDONYM = re.compile(r"^(?:customer|agent|bot|unknown)-[0-9a-f]{10}$")
_ROLE_LABEL = {Role.customer: "Customer", Role.agent: "Agent", Role.bot: "Bot"}


_PAST = {"know": "knew", "go": "went", "have": "had", "see": "saw", "get": "got", "do": "did",
         "make": "made", "take": "took", "come": "came", "say": "said", "tell": "told",
         "think": "thought", "buy": "bought", "find": "found", "give": "gave", "leave": "left",
         "meet": "met", "hear": "heard", "eat": "ate", "write": "wrote", "read": "read",
         "send": "sent", "spend": "spent", "pay": "paid", "lose": "lost", "feel": "felt",
         "sleep": "slept", "bring": "brought", "forget": "forgot", "begin": "began",
         "be": "was", "put": "put", "cut": "cut", "let": "let", "sell": "sold",
         "understand": "understood", "win": "won", "drive": "drove", "fly": "flew",
         "catch": "caught", "teach": "taught", "fight": "fought", "run": "ran",
         "sit": "sat", "stand": "stood", "hold": "held", "keep": "kept", "wear": "wore",
         "choose": "chose", "break": "broke", "fall": "fell", "grow": "grew",
         "speak": "spoke", "steal": "stole", "swim": "swam", "sing": "sang",
         "drink": "drank", "ring": "rang", "lend": "lent", "build": "built",
         "become": "became", "hurt": "hurt", "set": "set", "shut": "shut",
         "stop": "stopped", "plan": "planned", "shop": "shopped", "drop": "dropped"}  # fmt: skip


def past_tense(verb: str) -> str:
    """The simple past of a base-form verb ("did you go" -> "went")."""
    lower = verb.lower()
    if lower in _PAST:
        return _PAST[lower]
    if lower.endswith("e"):
        return verb + "d"
    if re.search(r"[^aeiou]y$", lower):
        return verb[:-1] + "ied"
    return verb + "ed"


def third_singular(verb: str) -> str:
    lower = verb.lower()
    if lower in _IRREGULAR:
        return _IRREGULAR[lower]
    if re.search(r"(?:s|sh|ch|x|z|o)$", lower):
        return verb + "es"
    if re.search(r"[^aeiou]y$", lower):
        return verb[:-1] + "ies"
    return verb + "s"


def third_person(
    sent: Any, speaker: str, addressee: str | None, *, we_is_speaker: bool = False
) -> str:
    """The spaCy span `sent` with I/you/we turned into named third persons.

    `we_is_speaker`: "we" is the speaker's side (a customer's company, a vendor), not the
    people in the room: "We were charged twice" -> "the customer was charged twice".
    """
    listener = addressee or "them"
    listener_of = f"{addressee}'s" if addressee else "their"
    speaker_of = "their" if speaker.startswith("the ") and we_is_speaker else f"{speaker}'s"
    out: list[str] = []
    named: set[str] = set()  # who has been named: "the customer's card ... their order"
    singular = {"i", "we"} if we_is_speaker else {"i"}
    # Verbs whose subject becomes a third person, found first: "Do you ..." inverts.
    converted_subjects = {
        t.head.i
        for t in sent
        if (t.lower_ in singular and t.dep_ in ("nsubj", "nsubjpass"))
        or (t.lower_ == "you" and addressee and t.dep_ in ("nsubj", "nsubjpass"))
    }
    tokens = list(sent)
    # A term of address opening the sentence ("Julia, could you ...", "Waiter, a rag").
    while (
        len(tokens) > 3
        and tokens[1].text == ","
        and (tokens[0].pos_ == "PROPN" or tokens[0].text in _NOT_A_NAME or tokens[0].is_title)
        and tokens[0].lower_ not in ("i", "yesterday", "today", "tomorrow", "however")
    ):
        tokens = tokens[2:]
    for token in tokens:
        lower = _CONTRACTED.get(token.lower_, token.lower_)
        text = lower if token.lower_ in _CONTRACTED else token.text
        if token.lower_ in _CONTRACTED and out and not out[-1].endswith(" "):
            out[-1] += " "
        if lower in ("i", "me", "myself") or (we_is_speaker and lower in ("we", "us")):
            text = speaker
            named.add(speaker)
        elif lower in ("my", "mine") or (we_is_speaker and lower in ("our", "ours")):
            text = speaker_of if speaker in named else f"{speaker}'s"
            named.add(speaker)
        elif lower in ("you", "yourself", "yourselves"):
            text = listener
        elif lower in ("your", "yours"):
            text = listener_of
        elif lower == "we":
            text = "they"
        elif lower in ("our", "ours"):
            text = "their"
        elif lower == "us" and token.dep_ != "compound":
            text = "them"
        elif token.i in converted_subjects or (
            token.dep_ in ("aux", "auxpass") and token.head.i in converted_subjects
        ):
            # Only the first verb of the group agrees with the subject: "has been", "is going".
            head = token if token.i in converted_subjects else token.head
            auxes = [c for c in head.children if c.dep_ in ("aux", "auxpass") and c.i < head.i]
            if token.i == (auxes[0] if auxes else head).i and (
                token.tag_ == "VBP" or lower in _IRREGULAR
            ):
                text = third_singular(text)
        out.append(text + token.whitespace_)
    result = "".join(out).strip()
    # "the customer 's" from "I 's"-like tokenisation, and a speaker name at the start.
    result = re.sub(r"\s+'s\b", "'s", result)
    return result[0].upper() + result[1:] if result else result
