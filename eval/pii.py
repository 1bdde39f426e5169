"""PII redaction dev figures: recall per PII type and over-masking per non-PII type, the
current detector (trained NER + rules) beside the previous one (Presidio + spaCy small).

Data (../shared/data, or $CONVOLENS_SHARED_DATA; dev splits only):
- CoNLL-2003 dev: person-token recall (and whole names), other tokens masked, per type;
- WNUT-17 dev: the same on noisy user text (person / location / group / corporation ...);
- presidio_synth (presidio-research `generated_large.json`, MIT): per-type recall on
  template sentences. Its templates are shared with the held-out PII set, so read it as a
  check of the patterns, not as a generalisation figure;
- eval/data/pii_conversational.jsonl: real conversation turns (IBM Twitter customer care,
  Apache-2.0; DialogSum dev, CC BY-NC-SA 4.0 (non-commercial: used for evaluation only, not
  shipped in the product); QMSum val, MIT) with hand-checked PII and business spans.

A labelled span counts as masked when redactions cover at least half of its characters
(token-level for CoNLL and WNUT: any overlap). Speed is texts per second through
`Redactor.redact` on the conversational set and 500 CoNLL sentences, one thread.

    .venv/bin/python eval/pii.py              (~4 min on 2 busy cores)
    .venv/bin/python eval/pii.py --quick      (conversational set + 600 CoNLL sentences)
    .venv/bin/python eval/pii.py --current-only   (without the previous detector's columns)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("CONVOLENS_SHARED_DATA") or ROOT.parent / "shared" / "data")
CONVERSATIONAL = Path(__file__).parent / "data" / "pii_conversational.jsonl"
sys.path.insert(0, str(ROOT / "training" / "ner"))

from ner_data import read_conll, read_wnut, spans  # noqa: E402

from convolens.enrich.pii import PiiConfig, Redactor  # noqa: E402

# Types whose masking is recall (the rest: over-masking, lower is better).
PII_TYPES = {
    "PER",
    "PERSON",
    "EMAIL_ADDRESS",
    "PHONE_NUMBER",
    "CREDIT_CARD",
    "US_SSN",
    "IBAN_CODE",
    "IP_ADDRESS",
    "ADDRESS",
    "STREET_ADDRESS",
    "ACCOUNT_NUMBER",
    "DATE_OF_BIRTH",
    "US_DRIVER_LICENSE",
}
Example = tuple[str, list[tuple[int, int, str]]]


def sentences_as_tokens(sentences: list[tuple[list[str], list[str]]]) -> list[Example]:
    """Each sentence joined with spaces; one labelled span per token (its entity type or O)."""
    out = []
    for words, tags in sentences:
        offsets, cursor = [], 0
        for word in words:
            offsets.append((cursor, cursor + len(word)))
            cursor += len(word) + 1
        labelled = [
            (s, e, tag.partition("-")[2] or "O") for (s, e), tag in zip(offsets, tags, strict=True)
        ]
        out.append((" ".join(words), labelled))
    return out


def whole_names(sentences: list[tuple[list[str], list[str]]], kind: str) -> list[Example]:
    """Entity spans of `kind` (for whole-name recall: every token masked)."""
    out = []
    for (text, _), (words, tags) in zip(sentences_as_tokens(sentences), sentences, strict=True):
        starts = [0]
        for word in words[:-1]:
            starts.append(starts[-1] + len(word) + 1)
        found = [
            (starts[s], starts[e - 1] + len(words[e - 1]), f"{kind} (whole name)")
            for s, e, k in spans(tags)
            if k == kind
        ]
        out.append((text, found))
    return out


def synthetic() -> list[Example]:
    records = json.loads((DATA / "pii/presidio_synth/generated_large.json").read_text())
    return [
        (
            r["full_text"],
            [(s["start_position"], s["end_position"], s["entity_type"]) for s in r["spans"]],
        )
        for r in records
    ]


def conversational() -> list[Example]:
    out = []
    for line in CONVERSATIONAL.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        out.append((record["text"], [(s["start"], s["end"], s["type"]) for s in record["spans"]]))
    return out


def masked_fractions(
    redactor: Redactor, examples: list[Example], *, token_level: bool
) -> tuple[dict[str, list[int]], float]:
    """Per type: [masked, total]; and texts per second."""
    texts = [text for text, _ in examples]
    started = time.perf_counter()
    results = []
    for start in range(0, len(texts), 64):
        results.extend(redactor.redact(texts[start : start + 64]))
    speed = len(texts) / (time.perf_counter() - started)
    counts: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for (text, labelled), (_, redactions) in zip(examples, results, strict=True):
        covered = bytearray(len(text))
        for r in redactions:
            covered[r.original_start : r.original_end] = b"\x01" * (
                r.original_end - r.original_start
            )
        for start, end, kind in labelled:
            chars = [i for i in range(start, end) if not text[i].isspace()]
            hit = sum(covered[i] for i in chars)
            masked = hit > 0 if token_level else bool(chars) and hit * 2 >= len(chars)
            counts[kind][0] += int(masked)
            counts[kind][1] += 1
    return counts, speed


def report(name: str, rows: dict[str, dict[str, list[int]]], speeds: dict[str, float]) -> None:
    detectors = list(rows)
    kinds = sorted(
        {k for r in rows.values() for k in r}, key=lambda k: (k.split()[0] not in PII_TYPES, k)
    )
    print(f"\n## {name}")
    print(f"| type | n | measure | {' | '.join(detectors)} |")
    print("|---|---|---|" + "---|" * len(detectors))
    for kind in kinds:
        n = max(rows[d].get(kind, [0, 0])[1] for d in detectors)
        measure = "recall" if kind.split()[0] in PII_TYPES else "masked"
        cells = []
        for d in detectors:
            hit, total = rows[d].get(kind, [0, 0])
            cells.append(f"{hit / total:.3f}" if total else "-")
        print(f"| {kind} | {n} | {measure} | {' | '.join(cells)} |")
    print("| texts/s | | | " + " | ".join(f"{speeds[d]:.0f}" for d in detectors) + " |")


def other_tokens(counts: dict[str, list[int]], person: str) -> list[int]:
    """All non-person tokens together: [masked, total]."""
    hit = sum(v[0] for k, v in counts.items() if k != person and "whole" not in k)
    total = sum(v[1] for k, v in counts.items() if k != person and "whole" not in k)
    return [hit, total]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument(
        "--current-only", action="store_true", help="skip the previous (Presidio) detector"
    )
    args = parser.parse_args()
    detectors = (
        {}
        if args.current_only
        else {
            "previous (presidio+sm)": Redactor(PiiConfig(detector="presidio")),
        }
    )
    detectors["convolens"] = Redactor(PiiConfig())
    limit = 600 if args.quick else None
    conll = read_conll(DATA / "ner/conll2003/dev.txt")[:limit]
    wnut = read_wnut(DATA / "ner/wnut17/emerging.dev.conll")[:limit]
    sets: list[tuple[str, list[Example], bool, str | None]] = [
        ("CoNLL-2003 dev (tokens)", sentences_as_tokens(conll), True, "PER"),
        ("CoNLL-2003 dev (whole person names)", whole_names(conll, "PER"), False, None),
        ("WNUT-17 dev (tokens; group/corporation -> ORG, product/creative -> MISC)",
         sentences_as_tokens(wnut), True, "PER"),
    ]  # fmt: skip
    if not args.quick:
        sets.append(("presidio_synth (templates shared with held-out)", synthetic(), False, None))
    sets.append(
        ("conversational (eval/data/pii_conversational.jsonl)", conversational(), False, None)
    )
    for name, examples, token_level, person in sets:
        rows, speeds = {}, {}
        for label, redactor in detectors.items():
            counts, speed = masked_fractions(redactor, examples, token_level=token_level)
            if person is not None:
                counts["non-PER tokens (all)"] = other_tokens(counts, person)
            rows[label], speeds[label] = dict(counts), speed
        report(name, rows, speeds)


if __name__ == "__main__":
    main()
