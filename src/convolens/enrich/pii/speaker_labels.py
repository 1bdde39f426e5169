"""Generic speaker labels: the names diarizers, transcript formats and datasets give people
they do not know ("Speaker 1", "SPEAKER_00", "#Person1#", "Agent", "Caller 2", "Unknown").

They name a seat in the conversation, not a person, so redaction keeps them: as a
participant's display name, and where they stand in the text ("#Person1#: hi",
"thanks, Speaker 2"). A real name beside one ("Customer Dana") is still a name.
"""

from __future__ import annotations

import re

__all__ = ["is_speaker_label", "label_spans"]

# Role nouns a label is made of; a number or a single letter may follow ("Speaker A").
_ROLES = (
    "speaker|spk|person|participant|caller|callee|customer|client|agent|user|guest|host|"
    "interviewer|interviewee|moderator|operator|assistant|representative|rep|bot|"
    "attendee|narrator|voice|unknown|unidentified|other|support"
)
_LABEL = (
    rf"#?(?:(?:unknown|unidentified)[ _-]?)?(?:{_ROLES})"
    r"(?:[ _-]?(?:\d{1,3}|[A-Z](?![A-Za-z])))?#?"
)
_FULL = re.compile(_LABEL, re.IGNORECASE)
# In running text: the label as a whole word, "#Person1#" with its hashes.
_IN_TEXT = re.compile(rf"(?<![\w#]){_LABEL}(?![\w#])", re.IGNORECASE)


def is_speaker_label(name: str | None) -> bool:
    """True when a display name is only a generic label ("Speaker 1", "#Person2#")."""
    return bool(name and _FULL.fullmatch(name.strip()))


def label_spans(text: str) -> list[tuple[int, int]]:
    """Where generic speaker labels stand in `text`: never a person's name."""
    return [m.span() for m in _IN_TEXT.finditer(text)]
