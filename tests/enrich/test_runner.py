"""The enrichment runner: lineage on every label, only what is missing, reprocessing.

Small components written here stand in for the model-backed ones: this tests the
orchestration (what runs, what is stored), not a model.
"""

import json
import re
from pathlib import Path
from typing import ClassVar

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.runner import enrich
from convolens.ingest.pipeline import ingest_paths

DATA = Path(__file__).resolve().parents[1] / "data"


class QuestionMarks(Component):
    """Labels each '?' with its exact character span."""

    name = "question-marks"
    version = "1"
    assigns: ClassVar[tuple[str, ...]] = ("question.mark",)
    model_id = "regex"

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        out = []
        for doc in batch:
            labels = []
            for i, utterance in enumerate(doc.conversation.utterances):
                for match in re.finditer(r"\?", utterance.text):
                    span = Evidence(doc.utterance_ids[i], 0, match.end())
                    labels.append(
                        Annotation(
                            "question.mark",
                            {"text": utterance.text[: match.end()]},
                            1.0,
                            doc.utterance_ids[i],
                            [span],
                        )
                    )
            out.append(labels)
        return out


class QuestionCount(Component):
    """Requires the marks of the component before it."""

    name = "question-count"
    version = "1"
    requires: ClassVar[tuple[str, ...]] = ("question.mark",)
    assigns: ClassVar[tuple[str, ...]] = ("question.count",)

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        return [[Annotation("question.count", len(doc.labels("question.mark")))] for doc in batch]


def test_labels_are_stored_with_lineage_and_evidence(warehouse):
    ingest_paths(warehouse, [DATA / "json" / "chats.jsonl"])
    report = enrich(warehouse, [QuestionMarks(), QuestionCount()])
    assert report.conversations == 3
    rows = warehouse.query(
        "SELECT e.*, u.text FROM enrichments e JOIN utterances u USING (utterance_id, version) "
        "WHERE label = 'question.mark' ORDER BY utterance_id"
    )
    assert [r["text"] for r in rows] == [
        "I can't log in since the update. Can you help?",
        "Sure, which device are you on?",
        "Where is my order ORD-77?",
    ]
    first = rows[0]
    assert (first["component"], first["component_version"], first["model_id"]) == (
        "question-marks",
        "1",
        "regex",
    )
    assert first["run_id"] == report.run_id
    (span,) = json.loads(first["evidence"])
    assert first["text"][span["start"] : span["end"]].endswith("Can you help?")
    counts = warehouse.query(
        "SELECT c.source_id, e.value FROM enrichments e JOIN conversations c "
        "USING (conversation_id, version) WHERE e.label = 'question.count' ORDER BY 1"
    )
    assert [(r["source_id"], json.loads(r["value"])) for r in counts] == [
        ("chat-1001", 2),
        ("chat-1002", 1),
        ("chat-1005", 0),
    ]


def test_only_what_is_missing_runs_and_new_versions_write_beside_old(warehouse):
    ingest_paths(warehouse, [DATA / "json" / "chats.jsonl"])
    enrich(warehouse, [QuestionMarks()])
    assert enrich(warehouse, [QuestionMarks()]).conversations == 0

    class QuestionMarksV2(QuestionMarks):
        version = "2"

    again = enrich(warehouse, [QuestionMarksV2()])
    assert again.conversations == 3
    versions = warehouse.query(
        "SELECT component_version, count(*) AS n FROM enrichments GROUP BY 1 ORDER BY 1"
    )
    assert [(r["component_version"], r["n"]) for r in versions] == [("1", 3), ("2", 3)]
