"""Email body text: quoted-reply and signature stripping, subject prefixes, HTML to text.

Hand-written on purpose: no well-kept library does this, and a small table of rules is
easier to predict (and to extend) than a heuristic model. `clean_body` applies, line by
line, in order:

1. Cut (drop this line and everything after it) at the first reply header:
   - "On <date>, <name> wrote:" - also when wrapped over two lines ("On ..." then
     "... wrote:");
   - "-----Original Message-----" (Outlook, any number of dashes >= 2);
   - a "From: ..." line followed within 4 lines by a "Sent:"/"Date:" line and a
     "To:"/"Subject:" line (Outlook / Apple Mail forwarded-header block);
   - a line of 10 or more underscores (Outlook's separator above that block).
2. Cut at the signature: a line that is exactly "-- " or "--", or a
   "Sent from my iPhone/iPad/Android/mobile device" line.
3. Drop quoted lines (those starting with ">") that were not already cut.
4. Strip trailing whitespace from each line, collapse runs of blank lines into one and
   drop leading and trailing blank lines.

Only English reply headers are recognised; add a pattern to `_CUT_LINE` for others.

`extract_text` finds the body of a MIME message to clean: see its docstring.
"""

from __future__ import annotations

import re
from email import errors, message_from_bytes, policy
from email.message import Message
from html.parser import HTMLParser

from convolens.ingest.base import decode_bytes

__all__ = ["clean_body", "extract_text", "html_to_text", "strip_reply_prefix"]

# A line matching any of these ends the message's own text.
_CUT_LINE: tuple[re.Pattern[str], ...] = (
    re.compile(r"^\s*On\b.*\bwrote:\s*$", re.IGNORECASE),
    re.compile(r"^\s*-{2,}\s*Original Message\s*-{2,}\s*$", re.IGNORECASE),
    re.compile(r"^\s*_{10,}\s*$"),
    re.compile(r"^--\s?$"),
    re.compile(r"^\s*Sent from my (iPhone|iPad|Android|mobile device)\b", re.IGNORECASE),
)
# "On Tue, 3 Mar 2026 at 09:12, Jane Doe <jane@example.com>" + next line "wrote:".
_WRAPPED_ON = re.compile(r"^\s*On\b", re.IGNORECASE)
_WRAPPED_WROTE = re.compile(r"\bwrote:\s*$", re.IGNORECASE)
# Outlook-style header block: "From:" then, within the next 4 lines, both of these.
_HEADER_FROM = re.compile(r"^\s*\*?From:\*?\s*\S", re.IGNORECASE)
_HEADER_FOLLOWERS: tuple[re.Pattern[str], ...] = (
    re.compile(r"^\s*\*?(Sent|Date):", re.IGNORECASE),
    re.compile(r"^\s*\*?(To|Subject):", re.IGNORECASE),
)
_QUOTED = re.compile(r"^\s*>")
_REPLY_PREFIX = re.compile(r"^\s*(re|fwd?|aw|wg|sv|vs|antw)\s*(\[\d+\])?\s*:\s*", re.IGNORECASE)


def _is_cut(lines: list[str], index: int) -> bool:
    line = lines[index]
    if any(pattern.match(line) for pattern in _CUT_LINE):
        return True
    following = lines[index + 1 : index + 5]
    if (
        _WRAPPED_ON.match(line)
        and following
        and _WRAPPED_WROTE.search(following[0])
        and not _QUOTED.match(following[0])
    ):
        return True
    return bool(_HEADER_FROM.match(line)) and all(
        any(pattern.match(other) for other in following) for pattern in _HEADER_FOLLOWERS
    )


def clean_body(text: str) -> str:
    """The author's own text of an email body: see the module docstring for the rules."""
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    kept: list[str] = []
    for index, line in enumerate(lines):
        if _is_cut(lines, index):
            break
        if not _QUOTED.match(line):
            kept.append(line.rstrip())
    return _tidy(kept)


def _tidy(lines: list[str]) -> str:
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    return "\n".join(out).strip("\n")


def strip_reply_prefix(subject: str | None) -> str | None:
    """'Re: Fwd: RE[2]: Order late' -> 'Order late'; None stays None."""
    if subject is None:
        return None
    previous = None
    text = subject.strip()
    while previous != text:
        previous, text = text, _REPLY_PREFIX.sub("", text, count=1).strip()
    return text


class _TextExtractor(HTMLParser):
    _BREAKS = frozenset({"br", "p", "div", "tr", "li", "ul", "ol", "table", "hr"})
    _BREAKS |= {f"h{level}" for level in range(1, 7)}
    # Never text; blockquote holds the quoted earlier message in HTML replies.
    _SKIP = frozenset({"script", "style", "head", "title", "blockquote"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self.skipping += 1
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._BREAKS:
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self.skipping = max(0, self.skipping - 1)
        elif tag in self._BREAKS and tag != "br":
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self.skipping:
            # Whitespace in HTML source is not significant; only tags break lines.
            self.parts.append(re.sub(r"\s+", " ", data))


def html_to_text(html: str) -> str:
    """Visible text of an HTML body, with line breaks at <br>, <p>, <div> and the like.

    Text inside <blockquote> (the quoted earlier message in HTML replies), <script>,
    <style> and <head> is dropped.
    """
    parser = _TextExtractor()
    parser.feed(html)
    parser.close()
    lines = [line.strip() for line in "".join(parser.parts).replace("\xa0", " ").split("\n")]
    return _tidy(lines)


# -- MIME body extraction ---------------------------------------------------------------

_TIERS = ((False, "text/plain"), (False, "text/html"), (True, "text/plain"), (True, "text/html"))
_BOUNDARY_LINE = re.compile(rb"^--([^\s]{1,70})[ \t]*\r?$", re.MULTILINE)


def extract_text(msg: Message, label: str) -> tuple[str | None, list[str]]:
    """The readable body of `msg` (None if there is none) and warnings about bad parts.

    Inline text/plain parts are preferred, then text/html as text. A part that decoded
    only with trouble (invalid base64 or quoted-printable, bytes invalid in its charset)
    is used only when no clean part has text. An unknown charset is guessed (UTF-8, else
    detected) with a warning. A multipart whose boundary is missing or wrong is re-split
    at its "--" lines. Attachments and attached emails (message/rfc822) are not body.
    Warnings read "<label>: part N (<type>): <problem>".
    """
    warnings: list[str] = []
    for container in msg.walk():
        problems = _defects(container) if container.is_multipart() else []
        if problems:
            kind = container.get_content_type()
            warnings.append(f"{label}: {kind}: malformed MIME structure: {', '.join(problems)}")
    found: dict[tuple[bool, str], list[str]] = {}
    leaves = _leaves(msg)
    number = 0
    while number < len(leaves):
        part = leaves[number]
        number += 1
        kind = part.get_content_type()
        where = f"{label}: part {number} ({kind})"
        text, problems, degraded = _decode(part)
        if part.get_content_maintype() == "multipart":  # its boundary did not parse
            recovered = _resplit(part)
            if recovered:
                warnings.append(f"{where}: MIME boundary missing or wrong; parts recovered")
                leaves.extend(recovered)
                continue
            warnings.append(f"{where}: no usable MIME boundary; body read as plain text")
            kind, degraded, problems = "text/plain", True, []
        warnings.extend(f"{where}: {problem}" for problem in problems)
        inline = part.get_content_disposition() != "attachment"
        if text and text.strip() and inline and kind in ("text/plain", "text/html"):
            found.setdefault((degraded, kind), []).append(text)
    for degraded, kind in _TIERS:
        texts = found.get((degraded, kind), [])
        texts = [html_to_text(t) if kind == "text/html" else t for t in texts]
        body = "\n\n".join(t.strip("\n") for t in texts if t.strip())
        if body:
            return body, warnings
    return None, warnings


def _leaves(part: Message) -> list[Message]:
    if part.get_content_maintype() == "message":
        return []
    if part.is_multipart():
        children = part.get_payload()
        return [leaf for sub in children if isinstance(sub, Message) for leaf in _leaves(sub)]
    return [part]


def _defects(part: Message) -> list[str]:
    out = []
    for defect in part.defects:
        if not isinstance(defect, errors.HeaderDefect):
            name = type(defect).__name__.removesuffix("Defect")
            words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", " ", name).lower()
            out.append(f"{words} ({defect})" if str(defect) else words)
    return out


def _decode(part: Message) -> tuple[str | None, list[str], bool]:
    """The text of a part (None for non-text parts), its problems, and whether the text
    is damaged (bad transfer encoding, bytes invalid in the charset)."""
    try:
        payload = part.get_payload(decode=True)  # registers transfer-encoding defects
    except Exception as exc:  # the library raising on a broken part must not stop us
        return None, [f"could not decode: {type(exc).__name__}: {exc}"], True
    problems = _defects(part)
    if problems:
        problems = [f"could not decode: {', '.join(problems)}"]
    degraded = bool(problems)
    if not isinstance(payload, bytes) or part.get_content_maintype() not in ("text", "multipart"):
        return None, problems, degraded
    charset = part.get_content_charset()
    if charset:
        try:
            return payload.decode(charset), problems, degraded
        except UnicodeDecodeError:
            problems.append(f"bytes invalid in charset {charset!r} replaced")
            return payload.decode(charset, errors="replace"), problems, True
        except (LookupError, ValueError):
            pass
    decoded = decode_bytes(payload)
    if charset:
        problems.append(f"unknown charset {charset!r}; read as {decoded.encoding}")
    return decoded.text, problems, degraded


def _resplit(part: Message) -> list[Message]:
    """The parts of a multipart whose boundary parameter is missing or wrong, found by
    re-reading the body with the boundary its first "--" line uses."""
    payload = part.get_payload(decode=True)
    if not isinstance(payload, bytes):
        return []
    match = _BOUNDARY_LINE.search(payload)
    if match is None:
        return []
    boundary = match.group(1).decode("ascii", errors="replace")
    header = f'Content-Type: {part.get_content_type()}; boundary="{boundary}"\n\n'
    rebuilt = message_from_bytes(
        header.encode("ascii", errors="replace") + payload, policy=policy.default
    )
    return _leaves(rebuilt) if rebuilt.is_multipart() else []
