"""Conversation types on real conversations: the sample corpus, QMSum meetings; per-source
overrides from a TOML config; support-only components skip meetings and sales calls."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from convolens.enrich.base import Doc
from convolens.enrich.config import load_component_settings
from convolens.enrich.conversation_type import (
    LABEL,
    ConversationTypeComponent,
    classify,
)
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.resolution import ResolutionComponent
from convolens.enrich.signals import SignalComponent
from convolens.enrich.trackers import TrackerComponent
from convolens.ingest.base import Parsed, SourceFile
from convolens.ingest.registry import detect_format, get_adapter
from convolens.model import Conversation

REPO = Path(__file__).resolve().parents[2]
EXAMPLES = REPO / "examples"
QMSUM = REPO.parent / "shared" / "data" / "meetings" / "qmsum"


def as_doc(conversation: Conversation) -> Doc:
    cid = conversation.conversation_id
    ids = [f"{cid}:{i}" for i in range(len(conversation.utterances))]
    return Doc(cid, 1, conversation, ids)


def example_docs(*relative: str) -> dict[str, Doc]:
    """The sample corpus's conversations in `relative` files, by source id."""
    out: dict[str, Doc] = {}
    for name in relative:
        source = SourceFile.read(EXAMPLES / name)
        fmt = detect_format(source)
        assert fmt is not None, name
        for result in get_adapter(fmt).parse(source):
            assert isinstance(result, Parsed), result
            out[str(result.conversation.source.source_id)] = as_doc(result.conversation)
    return out


def qmsum_doc(name: str) -> Doc:
    """A QMSum meeting as a transcript ingests it: a meeting, speakers without roles; the
    transcription markup ({vocalsound}, {disfmarker}) left out, as ASR output has none."""
    turns = json.loads((QMSUM / "val" / f"{name}.json").read_text())["meeting_transcripts"]
    for turn in turns:
        turn["content"] = " ".join(re.sub(r"\{\w+\}|\s+(?=[,.?!])", "", turn["content"]).split())
    speakers = list(dict.fromkeys(t["speaker"] for t in turns))
    conversation = Conversation.model_validate(
        {
            "channel": "meeting",
            "source": {"system": "qmsum", "source_id": name},
            "participants": [{"participant_id": s, "name": s} for s in speakers],
            "utterances": [{"participant_id": t["speaker"], "text": t["content"]} for t in turns],
        }
    )
    return as_doc(conversation)


@pytest.fixture(scope="module")
def corpus() -> dict[str, Doc]:
    return example_docs(
        "calls/call-20260915-0007.vtt",
        "calls/call-20260922-0009.vtt",
        "calls/meeting-20260916-0003.srt",
        "calls/meeting-20261013-0011.srt",
        "calls/meeting-20261105-0019.srt",
        "chats/sales_chats.json",
        "chats/support_chats.jsonl",
        "tickets/zendesk_export.json",
    )


def test_sample_corpus_types(corpus: dict[str, Doc]) -> None:
    types = {sid: classify(doc).value["type"] for sid, doc in corpus.items()}
    assert types["call-20260915-0007"] == "sales"  # the discovery call
    assert {
        types[s]
        for s in corpus
        if s.startswith("chat-2026") and s.endswith(("0101", "0102", "0103", "0104"))
    } == {"sales"}
    assert {types[s] for s in corpus if s.startswith("meeting-")} == {"meeting"}
    support = [
        s for s in corpus if s.startswith("chat-202609") and not s.endswith(("0101", "0102"))
    ]
    support += ["call-20260922-0009", "4312", "4330", "4388"]
    assert {types[s] for s in support} == {"support"}, {s: types[s] for s in support}


def test_label_has_evidence_reasons_and_confidence(corpus: dict[str, Doc]) -> None:
    doc = corpus["call-20260915-0007"]
    (label,) = ConversationTypeComponent()([doc])[0]
    assert label.label == LABEL and label.value["type"] == "sales"
    assert 0.5 < (label.confidence or 0) <= 1
    assert any("queue 'Sales'" in r for r in label.value["reasons"])
    texts = doc.conversation.utterances
    index = {uid: i for i, uid in enumerate(doc.utterance_ids)}
    quoted = [texts[index[e.utterance_id]].text[e.start_char : e.end_char] for e in label.evidence]
    assert quoted and all(q.strip() for q in quoted)
    assert any(q.lower() in {"evaluating", "pricing", "quote", "demo"} for q in quoted), quoted


@pytest.mark.skipif(not QMSUM.exists(), reason="shared QMSum data not present")
def test_qmsum_meetings_are_meetings() -> None:
    for path in sorted((QMSUM / "val").glob("*.json"))[:12]:
        value = classify(qmsum_doc(path.stem)).value
        assert value["type"] == "meeting" and value["customer"] is False, (path.stem, value)


def test_override_per_source_from_toml(tmp_path: Path, corpus: dict[str, Doc]) -> None:
    config = tmp_path / "convolens.toml"
    config.write_text(
        '[components.conversation_type]\nby_queue = { "sales" = "support" }\n'
        'by_source = { zoom = "interview" }\n',
        encoding="utf-8",
    )
    settings = load_component_settings(config)
    component = ConversationTypeComponent(settings.config("conversation_type"))
    sales_call, meeting = corpus["call-20260915-0007"], corpus["meeting-20260916-0003"]
    (call_label,), (meeting_label,) = component([sales_call, meeting])
    assert call_label.value["type"] == "support" and call_label.confidence == 1.0
    assert call_label.value["reasons"] == ["configured for queue 'Sales'"]
    assert meeting_label.value["type"] == "interview"
    bad = tmp_path / "bad.toml"
    bad.write_text('[components.conversation_type]\nby_queue = { Sales = "webinar" }\n')
    with pytest.raises(ValueError, match="webinar"):
        ConversationTypeComponent(load_component_settings(bad).config("conversation_type"))


@pytest.mark.skipif(not QMSUM.exists(), reason="shared QMSum data not present")
def test_support_only_components_skip_meetings_and_sales(
    corpus: dict[str, Doc], embedder: SentenceEmbedder
) -> None:
    docs = [
        qmsum_doc("ES2006a"),
        qmsum_doc("education_0"),  # a committee hearing ("lawyer" once made it churn)
        corpus["meeting-20261105-0019"],
        corpus["call-20260915-0007"],
        corpus["chat-20261001-0006"],  # an angry support chat: escalated, churn risk
    ]
    for doc in docs:
        doc.annotations += ConversationTypeComponent()([doc])[0]
    for doc, found in zip(docs, TrackerComponent(embedder=embedder)(docs), strict=True):
        doc.annotations += found
    resolution = ResolutionComponent(embedder=embedder)(docs)
    for doc, found in zip(docs, resolution, strict=True):
        doc.annotations += found
    signals = SignalComponent()(docs)
    for meeting in (0, 1, 2):
        assert resolution[meeting] == [], docs[meeting].conversation_id
    assert not [s for s in signals[0] + signals[1]], "no customer, no signal"
    assert "churn_risk" not in {s.value["signal"] for s in signals[2] + signals[3]}
    assert resolution[3] == []
    support = {a.label for a in resolution[4]}
    assert {"resolution.status", "escalation"} <= support
    assert "churn_risk" in {s.value["signal"] for s in signals[4]}
