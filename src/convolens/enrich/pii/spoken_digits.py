"""Digit sequences however they are said or typed, and what kind of number each one is.

Call transcripts read numbers out: "four one one one one one ...", "five five five, one two
three, four five six seven", "double five", "oh" for zero; chats split them into groups:
"4111 1111 1111 1111", "(555) 123-4567". `digit_runs` joins such a run into one digit
string with its character span in the text; `classify` names it from its length, a Luhn
check and the words just before it (card, phone, SSN, order id, account number).

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
            runs.append(DigitRun(start, end, digits, spoken, tuple(groups)))
        i = max(j, i + 1)
    return runs


_DATE = re.compile(r"^\d{4}[-./]\d{1,2}[-./]\d{1,2}$|^\d{1,2}[-./]\d{1,2}[-./]\d{2,4}$")
_THOUSANDS = re.compile(r"^\d{1,3}(?:,\d{3})+(?:\.\d+)?$")
_DECIMAL = re.compile(r"^\d+\.\d+$")


def _is_identifier(
    text: str, start: int, end: int, digits: str, groups: list[str], spoken: bool
) -> bool:
    """False for typed runs that are numbers rather than identifiers: dates, money,
    thousands, decimals, and score or table rows of short numbers."""
    if spoken:
        # "one two three four five six seven eight nine zero": counting or reading out
        # keys, not a number anyone owns.
        steps = [int(b) - int(a) for a, b in itertools.pairwise(digits)]
        return sum(step in (1, -9) for step in steps) < 0.7 * len(steps)
    surface = text[start:end]
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
    if n >= 8:
        return "ACCOUNT_NUMBER"
    if n == 7 and run.spoken:
        return "PHONE_NUMBER"  # seven digits read out: a local number
    return None
