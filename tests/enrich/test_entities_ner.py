"""The entities component on the NER model trained here: people, organisations and places
from it (spaCy keeps dates, money and the other types), the team's lists always found, and
its CoNLL-2003 dev figures on a slice of the real dev set."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from convolens.enrich.base import Annotation, Doc
from convolens.enrich.entities import EntityComponent
from convolens.enrich.ner import decode_spans, shared_ner
from convolens.model import Conversation

ROOT = Path(__file__).resolve().parents[2]
CONLL_DEV = ROOT.parent / "shared" / "data" / "ner" / "conll2003" / "dev.txt"


@pytest.fixture(scope="module")
def component() -> EntityComponent:
    return EntityComponent()


def _doc(*texts: str) -> Doc:
    conversation = Conversation.model_validate(
        {
            "channel": "chat",
            "source": {"system": "test"},
            "participants": [
                {"participant_id": "c", "role": "customer"},
                {"participant_id": "a", "role": "agent"},
            ],
            "utterances": [
                {"participant_id": "ca"[i % 2], "text": text} for i, text in enumerate(texts)
            ],
        }
    )
    return Doc("ner-doc", 1, conversation, [f"ner-doc:{i}" for i in range(len(texts))])


def _mentions(labels: list[Annotation]) -> dict[str, tuple[str, str]]:
    return {
        a.value["text"]: (a.value["type"], a.value["source"])
        for a in labels
        if a.label == "entity.mention"
    }


def test_people_organisations_places_come_from_the_trained_model(
    component: EntityComponent,
) -> None:
    assert component.version == "3"
    assert component.model_id is not None and component.model_id.startswith("convolens-ner-minilm-")
    (labels,) = component(
        [
            _doc(
                "Hi Christian, thanks for waiting.",
                "I'm calling from Barings plc about the invoice we got from Berlin.",
                "It was $49 on March 3.",
            )
        ]
    )
    found = _mentions(labels)
    # The example: spaCy's small model missed "Hi Christian".
    assert found["Christian"] == ("person", "ner")
    assert found["Barings plc"] == ("organization", "ner")
    assert found["Berlin"] == ("location", "ner")
    # spaCy still gives the types the trained model has not got.
    assert found["$49"][0] == "money" and found["March 3"][0] == "date"
    affiliation = [a.value for a in labels if a.label == "participant.affiliation"]
    assert [(v["participant_id"], v["company"]) for v in affiliation] == [("a", "Barings plc")]


def test_lower_case_speech_text_is_read_like_cased_text(component: EntityComponent) -> None:
    (labels,) = component([_doc("yeah i spoke with maria lopez in london yesterday")])
    found = _mentions(labels)
    assert found.get("maria lopez") == ("person", "ner")
    assert found.get("london") == ("location", "ner")


def test_the_team_lists_are_always_found(component: EntityComponent) -> None:
    (labels,) = component(
        [_doc("we are also evaluating contoso and vandelay industries for the pro plan")]
    )
    found = _mentions(labels)
    assert found["contoso"] == ("competitor", "ruler")
    assert found["vandelay industries"] == ("competitor", "ruler")
    assert found["pro plan"] == ("plan", "ruler")


def test_spacy_remains_selectable_by_name() -> None:
    previous = EntityComponent({"ner": "spacy"})
    assert previous.ner is None and not (previous.model_id or "").startswith("convolens-ner")


def test_span_decoding_keeps_a_mixed_vote_entity_whole() -> None:
    import numpy as np

    model = shared_ner()
    # Hand-made probabilities: "Bank of England" with "England" leaning LOC.
    rows = {
        "B-ORG": [0.70, 0.0, 0.0],
        "I-ORG": [0.0, 0.55, 0.40],
        "I-LOC": [0.0, 0.0, 0.50],
        "O": [0.30, 0.45, 0.10],
    }
    probs = np.zeros((3, len(model.labels)), dtype=np.float32)
    for label, column in rows.items():
        probs[:, model.index[label]] = column
    assert decode_spans(model, probs) == [(0, 3, "ORG")]
    # Argmax per word would have split it: B-ORG I-ORG I-LOC.
    assert [model.labels[i] for i in probs.argmax(1)] == ["B-ORG", "I-ORG", "I-LOC"]


def test_conll_dev_slice_per_type_f1() -> None:
    """The first 400 CoNLL-2003 dev sentences through the component's decoding; the whole
    dev set is eval/entities.py (figures in training/ner/MODEL_CARD.md)."""
    sys.path.insert(0, str(ROOT / "training" / "ner"))
    import numpy as np
    from ner_data import entity_f1, read_conll

    if not CONLL_DEV.is_file():
        pytest.fail(f"{CONLL_DEV} is missing: the shared datasets sit beside the checkout")
    sentences = read_conll(CONLL_DEV)[:400]
    model = shared_ner()
    predicted = []
    for (words, _), (_, probs) in zip(
        sentences, model.tag_batch([w for w, _ in sentences]), strict=True
    ):
        tags = ["O"] * len(words)
        for start, end, kind in decode_spans(model, np.stack(probs)):
            tags[start:end] = [f"B-{kind}"] + [f"I-{kind}"] * (end - start - 1)
        predicted.append(tags)
    scores = entity_f1(sentences, predicted)
    # Floors a little under the full-dev figures, so a broken decoding or model fails.
    assert scores["PER"]["f1"] >= 0.88, scores
    assert scores["LOC"]["f1"] >= 0.85, scores
    assert scores["ORG"]["f1"] >= 0.70, scores
