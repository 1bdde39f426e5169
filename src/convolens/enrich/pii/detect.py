"""Where PII hides in conversation text, found by the trained NER, patterns and context.

- people: the NER model trained here (`convolens.enrich.ner`, uncased, so ASR's lower-case
  "hi christian" reads like "Hi Christian"), every word whose person probability reaches
  the policy's threshold; greeting, sign-off and self-introduction frames ("Thanks,
  Rajesh", "this is Dana from ...") with a census first-name gazetteer for lower-case
  names; and the conversation's own participants (display names, email local parts);
- numbers: digit runs however said or typed (`spoken_digits`), named by length, Luhn
  check and the words before them; IBANs with their mod-97 check; IPs;
- emails on any domain (.internal, .local, .corp too) and spelled out ("dana dot w at
  acme dot com"); street addresses; dates of birth (a date after "born", "DOB", ...).

What is kept: anything inside a URL ("https://help.minecraft.net/..."), allow-listed and
team terms (competitors, products, plans, tracker phrases), and whatever the NER reads as an
organisation or place rather than a person ("Kohl's", "Netflix", "Zelle").
"""

from __future__ import annotations

import functools
import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from convolens.enrich.ner import NerModel, TaggedWord, shared_ner
from convolens.enrich.pii.policy import ALL_TYPES, DenyList, KeepList, PiiConfig, team_terms
from convolens.enrich.pii.speaker_labels import is_speaker_label, label_spans
from convolens.enrich.pii.spoken_digits import classify, digit_runs

__all__ = ["REDACTED", "Detector", "Finding", "first_names"]


@dataclass(slots=True)
class Finding:
    """One detected value: its span in the text, type, score and which rule found it."""

    start: int
    end: int
    entity_type: str
    score: float
    source: str


# A replacement left by the tag or hash operator (policy.ALL_TYPES, longest first).
REDACTED = re.compile(
    "<(?:" + "|".join(sorted(ALL_TYPES, key=len, reverse=True)) + r")(?:_[0-9a-f]{8})?>"
)
_URL = re.compile(r"(?:https?://|www\.)[^\s<>\"')\]]+", re.IGNORECASE)
_EMAIL = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+\-']*@[A-Za-z0-9\-]+(?:\.[A-Za-z0-9\-]+)+")
_SPOKEN_EMAIL = re.compile(
    r"\b[a-z0-9]+(?:\s+(?:dot|underscore|dash)\s+[a-z0-9]+)*\s+at\s+[a-z0-9]+"
    r"(?:\s+dot\s+[a-z0-9]+)*\s+dot\s+(?:com|net|org|io|co|uk|de|fr|edu|gov|internal|local|corp)\b",
    re.IGNORECASE,
)
_IBAN = re.compile(
    r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]{4}){2,7}(?:[ ]?[A-Z0-9]{1,3})?\b", re.IGNORECASE
)
# IPv6 candidates (validated by `ipaddress`): hex groups with at least two colons.
_IP6 = re.compile(r"(?<![\w:.])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])")
_IP = re.compile(
    r"(?<![\d.])(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)(?![\d.])"
)
_STREET_TYPES = (
    "street|st|avenue|ave|road|rd|boulevard|blvd|lane|ln|drive|dr|court|ct|place|pl|"
    "square|sq|terrace|way|parkway|pkwy|highway|hwy|close|crescent"
)
# A house number, one to three street-name words and a street type, optionally a unit.
_STREET = re.compile(
    r"\b\d{1,5}[A-Za-z]?\s+((?:[A-Za-z][a-z]+\.?\s+){1,3})(?:" + _STREET_TYPES + r")\b\.?"
    r"(?:,?\s+(?:apt|apartment|suite|unit|flat)\.?\s*#?\s*\w+)?",
    re.IGNORECASE,
)
_MONTHS = r"(?:jan|feb|mar|apr|may|jun|jul|aug|sep|sept|oct|nov|dec)[a-z]*\.?"
_YEAR = r"(?:\d{4}|(?:nineteen|twenty)[\s-]+[a-z]+(?:[\s-]+[a-z]+)?)"
_DAY = r"(?:\d{1,2}(?:st|nd|rd|th)?|[a-z]+(?:[\s-][a-z]+)?)"
_DOB = re.compile(
    r"\b(?:born(?:\s+on)?|birth\s*da(?:te|y)(?:\s+is)?|date\s+of\s+birth(?:\s+is)?|d\.?o\.?b\.?"
    r"(?:\s+is)?|birthday(?:\s+is)?)[:\s,]+"
    r"((?:\d{1,2}[/.-]\d{1,2}[/.-]\d{2,4}|\d{4}-\d{2}-\d{2}"
    rf"|{_MONTHS}\s+{_DAY},?\s+{_YEAR}|\d{{1,2}}(?:st|nd|rd|th)?\s+(?:of\s+)?{_MONTHS},?\s+{_YEAR}"
    rf"|(?:the\s+)?[a-z]+(?:[\s-][a-z]+)?\s+of\s+{_MONTHS},?\s+{_YEAR}))",
    re.IGNORECASE,
)
_WORD = r"[A-Za-z][A-Za-z'’\-]*"
# Frames that put a name right after them: greetings, thanks, sign-offs ...
_GREETING = re.compile(
    r"\b(?:hi|hiya|hello|hey|dear|thanks|thank\s+you|thx|cheers|bye|goodbye|good\s+morning|"
    r"good\s+afternoon|good\s+evening|morning|welcome|sorry|regards|best|sincerely|congrats)"
    rf"[,!.]?\s+({_WORD})(?:\s+({_WORD}))?",
    re.IGNORECASE,
)
# ... and self-introductions and references: a capitalised word or a known first name.
_INTRO = re.compile(
    r"\b(?:my\s+name\s+is|name's|this\s+is|i\s+am|i'm|it's|speaking\s+with|talking\s+to|"
    r"ask\s+for|spoke\s+(?:to|with)|transfer(?:ring)?\s+you\s+to|here\s+is|signed)"
    rf"[,:]?\s+({_WORD})(?:\s+({_WORD}))?",
    re.IGNORECASE,
)
# A sign-off at the end of a message: "-Shie 3/3", "^Kartika".
_SIGN_OFF = re.compile(r"(?:^|\s|[.!])[\^~\-–]\s?([A-Z][a-z]+)()\s*(?:\d+/\d+)?\s*$")
# Words a participant's display name can hold that are roles, not names.
_ROLE_WORDS = frozenset(
    [
        "agent",
        "customer",
        "support",
        "team",
        "bot",
        "caller",
        "speaker",
        "unknown",
        "admin",
        "sales",
        "service",
        "desk",
        "help",
        "user",
        "guest",
        "host",
        "moderator",
        "operator",
        "assistant",
        "rep",
        "representative",
        "client",
        "me",
        "you",
    ]
)
# Words after a greeting or "this is" that are not names: fillers, titles, months.
_NOT_NAMES = frozenset(
    [
        "there",
        "all",
        "everyone",
        "everybody",
        "again",
        "guys",
        "folks",
        "team",
        "both",
        "so",
        "very",
        "much",
        "for",
        "you",
        "sir",
        "madam",
        "maam",
        "ma'am",
        "mate",
        "buddy",
        "friend",
        "friends",
        "man",
        "dude",
        "ok",
        "okay",
        "yes",
        "no",
        "please",
        "calling",
        "writing",
        "here",
        "back",
        "just",
        "really",
        "regards",
        "mr",
        "mrs",
        "ms",
        "miss",
        "dr",
        "doctor",
        "prof",
        "professor",
        "january",
        "february",
        "march",
        "april",
        "may",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
    ]
)


_SURE_OF_A_FUNCTION_WORD = 0.9


@functools.lru_cache(maxsize=1)
def stop_words() -> frozenset[str]:
    """spaCy's English stop words, read from its data module without importing spaCy: the
    package's import pulls thinc and torch (3-4 s at the first redaction of a process, for
    a word list)."""
    import importlib.util

    package = importlib.util.find_spec("spacy")
    if package is None or not package.submodule_search_locations:
        raise ModuleNotFoundError("spaCy is not installed: pip install 'convolens[enrich]'")
    path = Path(next(iter(package.submodule_search_locations))) / "lang" / "en" / "stop_words.py"
    spec = importlib.util.spec_from_file_location("_convolens_en_stop_words", path)
    if spec is None or spec.loader is None:
        raise ModuleNotFoundError(f"spaCy's English stop words not found at {path.name}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return frozenset(module.STOP_WORDS)


@functools.lru_cache(maxsize=1)
def first_names() -> frozenset[str]:
    """US census 1990 first names (the `names` package, MIT), less English stop words."""
    from importlib.resources import files

    found: set[str] = set()
    for resource in ("dist.male.first", "dist.female.first"):
        text = files("names").joinpath(resource).read_text(encoding="utf-8")
        found.update(line.split()[0].lower() for line in text.splitlines() if line.strip())
    return frozenset(found - stop_words() - _NOT_NAMES)


def _iban_valid(value: str) -> bool:
    compact = value.replace(" ", "").upper()
    rearranged = compact[4:] + compact[:4]
    number = "".join(str(int(c, 36)) for c in rearranged)
    return len(compact) >= 15 and int(number) % 97 == 1


def _ipv6(value: str) -> bool:
    try:
        ipaddress.IPv6Address(value)
    except ValueError:
        return False
    return True


def participant_terms(names: Iterable[str | None], emails: Iterable[str | None]) -> list[str]:
    """Name words of display names and email local parts that can stand for a person
    (none from a generic label: "#Person1#" does not make "person" a name)."""
    stop = stop_words()
    terms: list[str] = []
    for name in names:
        if is_speaker_label(name):
            continue
        terms.extend(re.findall(r"[A-Za-z][A-Za-z'’\-]+", name or ""))
    for email in emails:
        local = (email or "").split("@")[0]
        terms.extend(w for w in re.split(r"[._+\-\d]+", local) if len(w) >= 3)
    return [
        t
        for t in dict.fromkeys(terms)
        if len(t) >= 2 and t.lower() not in _ROLE_WORDS and t.lower() not in stop
    ]


class Detector:
    """All detectors over a batch of texts; `find` returns non-overlapping findings."""

    def __init__(self, config: PiiConfig, ner: NerModel | None = None) -> None:
        self.config = config
        self.ner = ner or shared_ner(config.ner_model)
        self.keep = KeepList([*config.allow_list, *team_terms(config)])
        self.allow = KeepList(config.allow_list)
        self.deny = DenyList(config.deny_list)
        self.first_names = first_names()

    def find(
        self,
        texts: list[str],
        participants: list[str] | None = None,
        keep: list[str] | None = None,
        read: list[list[TaggedWord]] | None = None,
    ) -> list[list[Finding]]:
        """Findings per text; `participants` are name words that are people in these texts,
        `keep` names that are not (a bot's name is the product's); `read`: the NER's words
        of `texts` when the caller ran the model over a bigger batch already."""
        people = KeepList(
            [p for p in participants or [] if not self.keep.spans(p)]
            if self.config.participant_names
            else []
        )
        bots = KeepList(keep or [])
        words = read if read is not None else self.ner.words(texts)
        out: list[list[Finding]] = []
        for text, tagged in zip(texts, words, strict=True):
            if not text.strip():
                out.append([])
                continue
            found = self._patterns(text)
            threshold, veto = self.config.person_threshold, self.config.business_veto
            stop = stop_words()
            for word in tagged:
                p = word.prob(self.ner, "PER")
                business = sum(word.prob(self.ner, kind) for kind in ("ORG", "LOC", "MISC"))
                # The low threshold serves recall on rare names; a function word ("Happy
                # to be here": "be" at 0.47) needs the model to be sure.
                common = text[word.start : word.end].lower() in stop
                if (
                    p >= (max(threshold, _SURE_OF_A_FUNCTION_WORD) if common else threshold)
                    and business < veto
                    and any(c.isalpha() for c in text[word.start : word.end])
                ):
                    found.append(Finding(word.start, word.end, "PERSON", p, "ner"))
            found.extend(self._frames(text, tagged))
            found.extend(
                Finding(s, e, "PERSON", 0.95, "participant") for s, e in people.spans(text)
            )
            found.extend(
                Finding(s, e, "CUSTOM", 1.0, "deny_list") for s, e in self.deny.spans(text)
            )
            out.append(self._resolve(text, found, bots))
        return out

    def _patterns(self, text: str) -> list[Finding]:
        found = [Finding(*m.span(), "EMAIL_ADDRESS", 1.0, "email") for m in _EMAIL.finditer(text)]
        found += [
            Finding(*m.span(), "EMAIL_ADDRESS", 0.9, "spoken_email")
            for m in _SPOKEN_EMAIL.finditer(text)
        ]
        found += [
            Finding(*m.span(), "IBAN_CODE", 1.0, "iban")
            for m in _IBAN.finditer(text)
            if _iban_valid(m.group())
        ]
        found += [Finding(*m.span(), "IP_ADDRESS", 0.8, "ip") for m in _IP.finditer(text)]
        found += [
            Finding(*m.span(), "IP_ADDRESS", 0.8, "ip")
            for m in _IP6.finditer(text)
            if m.group().count(":") >= 3 and _ipv6(m.group())
        ]
        for run in digit_runs(text):
            kind = classify(run, text)
            if kind is not None:
                score = 1.0 if kind == "CREDIT_CARD" else 0.9 if kind == "ORDER_ID" else 0.85
                found.append(Finding(run.start, run.end, kind, score, "digits"))
        stop = stop_words()
        for m in _STREET.finditer(text):
            name_words = [w.rstrip(".").lower() for w in m.group(1).split()]
            # "220 for three at close" is a score, not an address: street names are not
            # function words or numbers.
            if any(w in stop or w in _NUMBER_WORDS for w in name_words):
                continue
            found.append(Finding(*m.span(), "STREET_ADDRESS", 0.7, "street"))
        found += [Finding(*m.span(1), "DATE_OF_BIRTH", 0.9, "dob") for m in _DOB.finditer(text)]
        return found

    def _frames(self, text: str, tagged: list[TaggedWord]) -> list[Finding]:
        """Names right after greetings, thanks, sign-offs and self-introductions."""
        found = []
        starts = {word.start: word for word in tagged}
        for pattern, strict in ((_GREETING, False), (_INTRO, True), (_SIGN_OFF, False)):
            for m in pattern.finditer(text):
                first, second = m.group(1), m.group(2)
                if not self._name_like(first, strict=strict):
                    continue
                # "Hi Yahoo", "hi Mojang": the NER knows an organisation when it sees one.
                word = starts.get(m.start(1))
                if word is not None and first.lower() not in self.first_names:
                    business = sum(word.prob(self.ner, kind) for kind in ("ORG", "LOC", "MISC"))
                    if business >= self.config.business_veto:
                        continue
                end = m.end(1)
                if second and second[0].isupper() and self._name_like(second, strict=False):
                    end = m.end(2)
                found.append(Finding(m.start(1), end, "PERSON", 0.9, "frame"))
        return found

    def _name_like(self, word: str, *, strict: bool) -> bool:
        lower = word.lower().strip("'’-")
        if lower in stop_words() or lower in _NOT_NAMES or lower in _ROLE_WORDS or len(lower) < 2:
            return False
        if lower in self.first_names:
            return True
        # A capitalised unknown word after a greeting is a name ("Hi Rajesh"); after "this
        # is" / "I'm" it is too often something else ("I'm Canadian"), so those need the
        # gazetteer, or the NER.
        return not strict and word[0].isupper() and not word.isupper()

    def _resolve(self, text: str, found: list[Finding], extra: KeepList) -> list[Finding]:
        """Drop kept spans, then keep the best of overlapping findings and merge neighbours."""
        urls = [m.span() for m in _URL.finditer(text)]
        # What an earlier pass replaced ("<PERSON>", "<EMAIL_ADDRESS_1a2b3c4d>") is left as it
        # is: redacting redacted text again changes nothing.
        done = [m.span() for m in REDACTED.finditer(text)]
        # Generic speaker labels ("Speaker 2", "#Person1#", "Caller") name a seat, not a person.
        keep = self.keep.spans(text) + extra.spans(text) + label_spans(text)
        allow = self.allow.spans(text)
        threshold = self.config.score_threshold

        def overlaps(f: Finding, spans: list[tuple[int, int]]) -> bool:
            return any(f.start < e and s < f.end for s, e in spans)

        candidates = [
            f
            for f in found
            if not overlaps(f, allow)
            and not overlaps(f, done)
            and not (f.entity_type != "EMAIL_ADDRESS" and overlaps(f, urls))
            and not (f.entity_type == "PERSON" and overlaps(f, keep))
            and (f.entity_type == "PERSON" or f.score >= threshold)
        ]
        # Patterns before people (an email's local part is not a separate name), then the
        # higher score and the longer span.
        ranked = sorted(
            candidates,
            key=lambda f: (f.entity_type == "PERSON", -f.score, -(f.end - f.start), f.start),
        )
        kept: list[Finding] = []
        for finding in ranked:
            if all(finding.end <= k.start or finding.start >= k.end for k in kept):
                kept.append(finding)
        merged: list[Finding] = []
        for finding in sorted(kept, key=lambda f: f.start):
            previous = merged[-1] if merged else None
            gap = text[previous.end : finding.start] if previous else ""
            if (
                previous is not None
                and previous.entity_type == finding.entity_type
                and not gap.strip(" '’-")
                and "\n" not in gap
            ):
                previous.end = finding.end
                previous.score = max(previous.score, finding.score)
            else:
                merged.append(finding)
        return merged


_NUMBER_WORDS = frozenset(
    [
        "zero",
        "one",
        "two",
        "three",
        "four",
        "five",
        "six",
        "seven",
        "eight",
        "nine",
        "ten",
        "eleven",
        "twelve",
        "twenty",
        "thirty",
        "forty",
        "fifty",
        "sixty",
        "seventy",
        "eighty",
        "ninety",
        "hundred",
        "thousand",
    ]
)
