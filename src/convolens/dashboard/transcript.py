"""A conversation's transcript as the dashboard shows it: evidence marks and the timeline.

Labels point at their evidence as (utterance_id, start, end) character spans into the
text the components saw, which is the (redacted) text stored. Several labels can cover
the same characters (a tracker hit inside a question inside a summary sentence), so the
text is cut at every span boundary and each piece is wrapped in one <mark> carrying all
the labels over it: marks never nest, and every label can still find its own marks.

The timeline of a timed conversation (call, meeting) is drawn from the utterances'
start/end per speaker: each speaker's talk is the union of their utterances, silence
is where nobody talks, overlap where two or more talk at once.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from itertools import pairwise
from typing import Any
from urllib.parse import quote

from markupsafe import Markup, escape
from pydantic import BaseModel

from convolens.metrics.intervals import Interval, gaps, union
from convolens.store.warehouse import Warehouse

__all__ = [
    "EVIDENCE_KINDS",
    "Insight",
    "Span",
    "Timeline",
    "insights_from_labels",
    "marked_text",
    "recording_player",
    "spans_by_utterance",
    "timeline",
    "word_ranges",
]

# label name -> mark kind (the CSS class and the toggle in the transcript's legend).
EVIDENCE_KINDS: dict[str, str] = {
    "tracker.match": "tracker",
    "signal": "signal",
    "question": "question",
    "action_item": "action",
    "follow_up": "action",
    "intent.primary": "intent",
    "topic.keyphrase": "topic",
    "entity.mention": "entity",
    "resolution.status": "resolution",
    "escalation": "resolution",
    "summary.extractive": "summary",
}
# Shown without a click; the rest (many, long or whole-utterance spans) on demand.
DEFAULT_ON = frozenset({"tracker", "signal", "question", "action", "topic"})
# When one piece of text is under several kinds, the first kind here colours it.
_PRIORITY = ["tracker", "signal", "resolution", "question", "action", "intent", "topic",
             "entity", "summary"]  # fmt: skip


class Span(BaseModel):
    utterance_id: str
    start: int
    end: int
    ref: int  # the index of the Insight it is evidence for
    kind: str


class Insight(BaseModel):
    """One label as an item of the insights panel, with its evidence marks' reference."""

    ref: int
    label: str
    kind: str
    title: str
    detail: str = ""
    confidence: float | None = None
    utterance_id: str | None = None
    evidence: list[dict[str, Any]] = []


def _title(label: str, value: Any) -> tuple[str, str]:
    """A short title and a detail line for a label's value (what the panel lists)."""
    v = value if isinstance(value, dict) else {}
    if label == "tracker.match":
        return str(v.get("tracker")), str(v.get("text") or v.get("example") or "")
    if label == "signal":
        reasons = v.get("reasons") or []
        return str(v.get("signal")), "; ".join(str(r) for r in reasons[:3])
    if label == "question":
        state = "answered" if v.get("answered") else "unanswered"
        return str(v.get("text") or "question"), f"{v.get('role') or ''} · {state}"
    if label in ("action_item", "follow_up"):
        due = f" · due {v['due_text']}" if v.get("due_text") else ""
        kind = v.get("kind") or label.replace("_", " ")
        return str(v.get("text") or ""), f"{kind} · {v.get('owner_role') or ''}{due}"
    if label == "intent.primary":
        return str(v.get("intent")), " › ".join(v.get("path") or [])
    if label == "topic.keyphrase":
        return str(v.get("phrase")), ""
    if label == "entity.mention":
        return str(v.get("canonical") or v.get("text")), str(v.get("type") or "")
    if label == "resolution.status":
        return str(v.get("status")), ", ".join(str(r) for r in v.get("reasons") or [])
    if label == "escalation":
        return "escalation", str(v.get("kind") or v.get("to") or "")
    if label == "summary.extractive":
        return "summary", str(v.get("text") or "")
    return label, ""


def insights_from_labels(labels: Iterable[dict[str, Any]]) -> list[Insight]:
    """The labels that have evidence worth marking, numbered for the marks to refer to."""
    out: list[Insight] = []
    for row in labels:
        kind = EVIDENCE_KINDS.get(row["label"])
        if kind is None:
            continue
        title, detail = _title(row["label"], row["value"])
        evidence = row.get("evidence") or []
        if row["label"] == "summary.extractive":
            # A summary's evidence is its sentences: one span each.
            sentences = (row["value"] or {}).get("sentences") or []
            evidence = [
                {"utterance_id": s["utterance_id"], "start": s["start"], "end": s["end"]}
                for s in sentences
                if "utterance_id" in s
            ] or evidence
        out.append(
            Insight(
                ref=len(out),
                label=row["label"],
                kind=kind,
                title=title,
                detail=detail,
                confidence=row.get("confidence"),
                utterance_id=row.get("utterance_id"),
                evidence=list(evidence),
            )
        )
    return out


def spans_by_utterance(insights: Iterable[Insight]) -> dict[str, list[Span]]:
    found: dict[str, list[Span]] = defaultdict(list)
    for item in insights:
        for ev in item.evidence:
            try:
                start, end = int(ev["start"]), int(ev["end"])
            except (KeyError, TypeError, ValueError):
                continue
            if end > start >= 0:
                found[str(ev["utterance_id"])].append(
                    Span(utterance_id=str(ev["utterance_id"]), start=start, end=end,
                         ref=item.ref, kind=item.kind)
                )  # fmt: skip
    return found


WordRange = tuple[int, int, int, float, float]
"""(first character, end character, word index, start s, end s) of a word in the text."""


def word_ranges(text: str, words: Sequence[dict[str, Any]] | None) -> list[WordRange]:
    """Where each timed word sits in the (redacted) utterance text, found in order.

    Redaction replaces every word of a value with the value's replacement while the text
    holds it once ("415 555 0134" -> one "<PHONE_NUMBER>", three words): such words share
    the first one's characters and stretch its time. A word not found is left out."""
    out: list[WordRange] = []
    cursor = 0
    for index, word in enumerate(words or []):
        token = str(word.get("text") or "").strip()
        if not token or word.get("start_s") is None or word.get("end_s") is None:
            continue
        start_s, end_s = float(word["start_s"]), float(word["end_s"])
        at = text.find(token, cursor)
        if out and text[out[-1][0] : out[-1][1]] == token and (at < 0 or text[cursor:at].strip()):
            first, last, i, s, _ = out[-1]  # one more word of the same replaced value
            out[-1] = (first, last, i, s, end_s)
            continue
        if at < 0:
            continue
        cursor = at + len(token)
        out.append((at, cursor, index, start_s, end_s))
    return out


def _with_words(text: str, a: int, b: int, words: Sequence[WordRange]) -> str:
    """text[a:b], escaped, each word's part in a <span class="w"> carrying its times (the
    player seeks to data-s on a click and highlights the word while it plays)."""
    pieces: list[str] = []
    cursor = a
    for start, end, index, start_s, end_s in words:
        lo, hi = max(start, a), min(end, b)
        if hi <= lo:
            continue
        pieces.append(str(escape(text[cursor:lo])))
        pieces.append(
            f'<span class="w" data-w="{index}" data-s="{start_s:.3f}" data-e="{end_s:.3f}">'
            f"{escape(text[lo:hi])}</span>"
        )
        cursor = hi
    pieces.append(str(escape(text[cursor:b])))
    return "".join(pieces)


def marked_text(
    text: str,
    spans: Sequence[Span],
    titles: dict[int, str] | None = None,
    words: Sequence[dict[str, Any]] | None = None,
) -> Markup:
    """The utterance text, HTML-escaped, with each evidence piece in a <mark>.

    A mark's classes name its kinds (k-tracker, ...), `data-ev` the insights it supports;
    marks whose kinds are all off by default start with the class `off`. With `words`
    (timed words: text, start_s, end_s) each word is a <span class="w"> inside the marks.
    """
    n = len(text)
    bounds = {0, n}
    clipped = [(max(0, min(s.start, n)), max(0, min(s.end, n)), s) for s in spans]
    for start, end, _ in clipped:
        bounds.update((start, end))
    cuts = sorted(bounds)
    timed = word_ranges(text, words)
    pieces: list[str] = []
    for a, b in pairwise(cuts):
        piece = _with_words(text, a, b, timed) if timed else str(escape(text[a:b]))
        over = [s for start, end, s in clipped if start <= a and b <= end and end > start]
        if not over:
            pieces.append(piece)
            continue
        kinds = sorted({s.kind for s in over}, key=_PRIORITY.index)
        refs = sorted({s.ref for s in over})
        classes = ["ev", *(f"k-{k}" for k in kinds)]
        shown = [k for k in kinds if k in DEFAULT_ON]
        if not shown:
            classes.append("off")
        kind_of = {s.ref: s.kind for s in over}
        title = "; ".join(dict.fromkeys((titles or {}).get(r, kind_of[r]) for r in refs))
        pieces.append(
            f'<mark class="{" ".join(classes)}" data-top="{(shown or kinds)[0]}" '
            f'data-ev="{" ".join(map(str, refs))}" title="{escape(title)}">{piece}</mark>'
        )
    return Markup("".join(pieces))


def recording_player(db: Warehouse, header: dict[str, Any]) -> dict[str, Any] | None:
    """The player of a conversation page: the redacted recording's URL (the dashboard's
    cookie route) and what was beeped; None when no recording is kept."""
    from convolens.speech.audio_redaction import find_recording

    cid = str(header["conversation_id"])
    copy = find_recording(db, cid, int(header["version"]))
    if copy is None:
        return None
    return {
        "url": f"/dashboard/audio/{quote(cid, safe='')}",
        "beeped": len(copy.spans),
        "duration_s": copy.duration_s,
    }


class Timeline(BaseModel):
    """Talk per speaker, silence and overlap, in seconds from the start."""

    duration: float
    speakers: dict[str, list[Interval]]
    silence: list[Interval]
    overlap: list[Interval]


def _overlap(unions: Iterable[Sequence[Interval]]) -> list[Interval]:
    """Where two or more speakers' talk intersects (a sweep over start/end events)."""
    events: list[tuple[float, int]] = []
    for spans in unions:
        for start, end in spans:
            events += [(start, 1), (end, -1)]
    events.sort(key=lambda e: (e[0], e[1]))  # ends before starts at the same instant
    out: list[Interval] = []
    active, opened = 0, 0.0
    for at, step in events:
        if step > 0:
            active += 1
            if active == 2:
                opened = at
        else:
            if active == 2 and at > opened:
                out.append((opened, at))
            active -= 1
    return union(out)


def timeline(
    utterances: Sequence[dict[str, Any]],
    names: dict[str, str],
    duration: float | None = None,
    *,
    min_silence: float = 0.5,
) -> Timeline | None:
    """The timeline of a timed conversation; None when the utterances carry no times.

    `names` maps participant ids to the names shown; silences shorter than `min_silence`
    seconds (the breath between turns) are left out so the real pauses stand out.
    """
    talk: dict[str, list[Interval]] = defaultdict(list)
    for u in utterances:
        if u.get("start_s") is None or u.get("end_s") is None or u.get("internal"):
            continue
        speaker = names.get(u["participant_id"], u["participant_id"])
        talk[speaker].append((float(u["start_s"]), float(u["end_s"])))
    if not talk:
        return None
    speakers = {name: union(spans) for name, spans in talk.items()}
    everyone = union(iv for spans in speakers.values() for iv in spans)
    end = max(duration or 0.0, everyone[-1][1])
    silence = [g for g in gaps(everyone, end) if g[1] - g[0] >= min_silence]
    return Timeline(
        duration=end, speakers=speakers, silence=silence, overlap=_overlap(speakers.values())
    )
