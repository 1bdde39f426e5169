"""Digit sequences however they are said or typed, and what kind of number each one is.

Call transcripts read numbers out: "four one one one one one ...", "five five five, one two
three, four five six seven", "double five", "oh" for zero; chats split them into groups:
"4111 1111 1111 1111", "(555) 123-4567". `digit_runs` joins such a run into one digit
string with its character span in the text; `classify` names it from its length, a Luhn
check and the words just before it (card, phone, SSN, order id, account number).

Whisper writes numbers read out from speech in its own ways: digit by digit with hyphens
or dots ("4-1-1-1-1-1-...", "4.1.1.1 1.1.1.1 ..."), groups with commas ("4111, 1111, 1111,
1111", "415, 555, 0134"), words and digits mixed ("four one one one 1111 ..."), and "four"
heard as "for" ("for 1111 1111 1111 1111"). Runs written digit by digit or as a comma list
are named only by strong evidence (a Luhn-valid card, a phone's length, the words before
them): a list of counts ("120, 135, 150, 165 users") is not an account number.

What is not a run: counts and scores of one or two digits in a row ("6-3 6-4", "220 for
three"), dates ("2026-11-06"), money and thousands ("$1,234,567"), decimals.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

__all__ = ["DigitRun", "classify", "digit_runs", "luhn_valid"]

_UNITS = {
    "zero": "0", "oh": "0", "o": "0", "nought": "0", "nil": "0",
    "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9",
}  # fmt: skip
_TEENS = {
    "ten": "10", "eleven": "11", "twelve": "12", "thirteen": "13", "fourteen": "14",
    "fifteen": "15", "sixteen": "16", "seventeen": "17", "eighteen": "18", "nineteen": "19",
}  # fmt: skip
_TENS = {
    "twenty": "2", "thirty": "3", "forty": "4", "fifty": "5",
    "sixty": "6", "seventy": "7", "eighty": "8", "ninety": "9",
}  # fmt: skip
_REPEAT = {"double": 2, "triple": 3}
# Words a speech recogniser writes for a digit said just before a number ("for 1111 ...").
_HOMOPHONES = {"for": "4", "fore": "4", "to": "2", "too": "2", "won": "1", "ate": "8"}
# A token: a word, a digit group, or one separator character.
# A digit group inside a word ("0x30005001", "A1234567") is a code, not part of a number.
_TOKEN = re.compile(r"\+\d+|[A-Za-z0-9]+|[^\sA-Za-z\d]")
_SEPARATORS = {",", "-", ".", "(", ")", "/", "–"}
_SEPARATOR_WORDS = {"dash", "hyphen", "and"}

# The words before a run that say what it is (looked for in the six words before it).
_CONTEXT = {
    "card": {"card", "visa", "mastercard", "amex", "debit", "credit"},
    "ssn": {"ssn", "social", "security"},
    "phone": {
        "phone", "call", "number", "cell", "mobile", "reach", "text", "fax", "tel",
        "telephone", "landline", "callback", "dial",
    },
    "order": {
        "order", "ticket", "case", "confirmation", "tracking", "reference", "ref",
        "invoice", "booking", "reservation", "shipment", "rma", "incident", "po",
    },
    "account": {
        "account", "acct", "routing", "member", "policy", "pin", "customer", "id",
        "passport", "licence", "license", "sort", "iban", "bank",
    },
}  # fmt: skip


@dataclass(frozen=True, slots=True)
class DigitRun:
    """A run of digits: its span in the text, the digits, and how it was written."""

    start: int
    end: int
    digits: str
    spoken: bool
    groups: tuple[str, ...]  # written digit groups as typed ("555", "123", "4567")
    listed: bool = False  # typed groups separated by commas

    @property
    def weak(self) -> bool:
        """Written digit by digit ("4-1-1-1 ...") or as a comma list ("415, 555, 0134"):
        a shape counts and lists share, so only strong evidence names it."""
        return len(self.groups) >= 2 and (all(len(g) == 1 for g in self.groups) or self.listed)


def luhn_valid(digits: str) -> bool:
    """The payment-card checksum (ISO/IEC 7812)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = int(char)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _spoken_value(words: list[str], i: int) -> tuple[str, int] | None:
    """The digits the spoken number at words[i] stands for and how many words it took."""
    word = words[i]
    if word in _REPEAT and i + 1 < len(words) and words[i + 1] in _UNITS:
        return _UNITS[words[i + 1]] * _REPEAT[word], 2
    if word in _UNITS:
        if word == "o" and not (i + 1 < len(words) and words[i + 1] in _UNITS):
            return None  # a lone "o" is a letter, not zero
        if i + 1 < len(words) and words[i + 1] == "hundred":
            return _UNITS[word] + "00", 2
        return _UNITS[word], 1
    if word in _TEENS:
        return _TEENS[word], 1
    if word in _TENS:
        if i + 1 < len(words) and words[i + 1] in _UNITS and words[i + 1] not in ("oh", "o"):
            return _TENS[word] + _UNITS[words[i + 1]], 2
        return _TENS[word] + "0", 1
    return None


def digit_runs(text: str, min_digits: int = 6) -> list[DigitRun]:
    """Every run of at least `min_digits` digits, spoken or typed, with its span."""
    tokens = [(m.group(), m.start(), m.end()) for m in _TOKEN.finditer(text)]
    lowered = [t[0].lower() for t in tokens]
    runs: list[DigitRun] = []
    i = 0
    while i < len(tokens):
        digits, groups, spoken = "", [], False
        start = end = -1
        j = i
        while j < len(tokens):
            token = tokens[j][0]
            is_group = token.lstrip("+").isdigit()
            value = None if is_group else _spoken_value(lowered, j)
            if is_group:
                digits += token.lstrip("+")
                groups.append(token)
                taken = 1
            elif value is not None:
                digits += value[0]
                spoken = True
                taken = value[1]
            elif digits and (token in _SEPARATORS or lowered[j] in _SEPARATOR_WORDS):
                j += 1
                continue
            else:
                break
            if start < 0:
                start = tokens[j][1]
            end = tokens[j + taken - 1][2]
            j += taken
        if start > 0 and text[start - 1] == "(":
            start -= 1  # "(555) 123-4567": the area code's bracket goes with it
        if len(digits) >= min_digits and _is_identifier(text, start, end, digits, groups, spoken):
            listed = not spoken and "," in text[start:end]
            run = DigitRun(start, end, digits, spoken, tuple(groups), listed)
            runs.append(_with_homophone(run, text, tokens[i - 1] if i else None))
        i = max(j, i + 1)
    return runs


def _with_homophone(run: DigitRun, text: str, before: tuple[str, int, int] | None) -> DigitRun:
    """The run with the word before it taken as its first digit ("for 1111 1111 1111
    1111": "four" misheard) when only that makes it a Luhn-valid card number."""
    if before is None or text[before[2] : run.start].strip():
        return run
    digit = _HOMOPHONES.get(before[0].lower())
    candidate = (digit or "") + run.digits
    if digit is None or luhn_valid(run.digits) or not 13 <= len(candidate) <= 19:
        return run
    if not luhn_valid(candidate):
        return run
    return DigitRun(before[1], run.end, candidate, True, run.groups, run.listed)


_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DECIMAL = re.compile(r"^\d+\.\d+$")


def _is_identifier(
    text: str, start: int, end: int, digits: str, groups: list[str], spoken: bool
) -> bool:
    """False for typed runs that are numbers rather than identifiers: dates, money,
    thousands, decimals, and score or table rows of short numbers."""
    single = len(groups) >= 2 and all(len(g) == 1 for g in groups)
    if spoken or single:
        # "one two three four five six seven eight nine zero", "1, 2, 3, 4, 5, 6":
        # counting or reading out keys, not a number anyone owns.
        steps = [int(b) - int(a) for a, b in itertools.pairwise(digits)]
        if sum(step in (1, -9) for step in steps) >= 0.7 * len(steps):
            return False
        if spoken:
            return True
    surface = text[start:end]
    if single:
        # Digit by digit, as Whisper writes a number read out ("4-1-1-1-...", "4.1.1.1
        # 1.1.1.1", "4.1.5. 5.5.5. 0.1.3.4"): at least three digits between spaces. A score
        # table ("6-4 6-3 7-5", "6-4, 6-3") has pairs.
        chunks = surface.split()
        return "," not in surface and all(sum(c.isdigit() for c in x) >= 3 for x in chunks)
    if _DATE.match(surface) or _THOUSANDS.match(surface) or _DECIMAL.match(surface):
        return False
    if text[max(0, start - 1) : start] in ("$", "£", "€"):
        return False
    short = [len(g) <= 2 and not g.startswith("+") for g in groups]
    # Two short groups in a row read as a score or a table ("22 5 3 14"), except the
    # SSN shape 3-2-4 and a leading country code.
    if any(a and b for a, b in itertools.pairwise(short)):
        return False
    return len(groups) == 1 or sum(short) <= 1 or bool(re.match(r"^\d{3}-\d{2}-\d{4}$", surface))


def context_kinds(text: str, start: int, window: int = 5) -> set[str]:
    """What the words just before `start` say the number is: the nearest telling word of
    the same clause wins ("order 123 shipped; my account number is 12345678" -> account).
    "number" alone says phone only when nothing nearer says otherwise."""
    clause = re.split(r"[.;!?\n]", text[:start])[-1]
    words = re.findall(r"[a-z]+", clause.lower())[-window:]
    weak = False
    for word in reversed(words):
        kinds = {kind for kind, said in _CONTEXT.items() if word in said}
        if word == "number":
            weak = True
            continue
        if kinds:
            return kinds
    return {"phone"} if weak else set()


def classify(run: DigitRun, text: str) -> str | None:
    """The PII type of a run (None: not an identifier worth naming)."""
    digits = run.digits
    said = context_kinds(text, run.start)
    n = len(digits)
    if run.listed and not said and not _listed_shape(run):
        return None  # "120, 135, 150, 165, 180 users" passes Luhn one time in ten
    if 13 <= n <= 19 and luhn_valid(digits):
        return "CREDIT_CARD"
    if "order" in said and "card" not in said:
        return "ORDER_ID"
    if n == 9 and ("ssn" in said or re.fullmatch(r"\d{3}-\d{2}-\d{4}", text[run.start : run.end])):
        return "US_SSN"
    if "card" in said and 13 <= n <= 19:
        return "CREDIT_CARD"  # a card read out with a digit misheard still is one
    if "account" in said and n >= 6:
        return "ACCOUNT_NUMBER"
    if "phone" in said and 7 <= n <= 15:
        return "PHONE_NUMBER"
    international = bool(run.groups) and run.groups[0].startswith("+")
    if n == 10 or (n == 11 and digits[0] == "1") or (international and n <= 15):
        return "PHONE_NUMBER"
    if run.weak:
        return None  # "120, 135, 150, 165 users": a list, unless something above said more
    if n >= 8:
        return "ACCOUNT_NUMBER"
    if n == 7 and run.spoken:
        return "PHONE_NUMBER"  # seven digits read out: a local number
    return None


def _listed_shape(run: DigitRun) -> bool:
    """A comma list grouped as a card ("4111, 1111, 1111, 1111"; Amex 4-6-5) passing Luhn,
    or as a phone number ("415, 555, 0134")."""
    shape = tuple(len(g.lstrip("+")) for g in run.groups)
    card = (len(shape) >= 3 and set(shape[:-1]) == {4} and shape[-1] <= 4) or shape in (
        (4, 6, 5),
        (4, 6, 4),
    )
    return (card and luhn_valid(run.digits)) or shape in ((3, 3, 4), (1, 3, 3, 4), (3, 4))
