"""Sentiment and emotion: the committed conversation encoder on real sentences, offline.

Texts come from the issue (#13) that reported the previous model's failures, and from
real support exchanges; nothing here trains anything.
"""

from __future__ import annotations

import json

import pytest

from convolens.enrich.base import Annotation
from convolens.enrich.conversation_encoder import (
    ARTEFACT_DIR,
    CACHE_KEY,
    EncoderPass,
    shared_encoder,
)
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.sentiment import (
    ARTEFACT,
    SentimentComponent,
    SentimentModel,
    politeness_remainder,
)

NEGATIVE = "This is the third time my order is late, I'm furious."
POSITIVE = "Thanks so much, that fixed it, you're amazing!"
NEUTRAL = "My order number is 5512."
FRUSTRATED = "So frustrating! I reset my password twice and still no access."


@pytest.fixture(scope="module")
def component() -> SentimentComponent:
    return SentimentComponent()


def by_label(labels: list[Annotation], name: str) -> list[Annotation]:
    return [a for a in labels if a.label == name]


def utterance(labels: list[Annotation], uid: str) -> dict:
    [found] = [a for a in by_label(labels, "sentiment.utterance") if a.utterance_id == uid]
    return found.value


def emotions(labels: list[Annotation], uid: str) -> set[str]:
    return {a.value["emotion"] for a in by_label(labels, "emotion") if a.utterance_id == uid}


def test_artefact_is_small_int8_onnx_with_its_labels() -> None:
    model = ARTEFACT_DIR / "model.int8.onnx"
    assert model.stat().st_size < 40 * 2**20
    meta = json.loads((ARTEFACT_DIR / "labels.json").read_text())
    assert meta["heads"]["sentiment"] == ["negative", "neutral", "positive"]
    assert meta["heads"]["emotion"] == ["none", "frustration", "confusion", "satisfaction"]
    assert "question_yn" in meta["heads"]["dialogue_act"]
    # int8 must agree with the fp32 export on nearly every dev text (export.py checks).
    assert min(meta["agreement_on_dev_texts_pct"]["int8_vs_fp32"].values()) >= 90
    assert SentimentComponent().model_id == meta["model_id"] == shared_encoder().model_id


def test_the_issues_examples(component: SentimentComponent, make_doc) -> None:
    doc = make_doc(
        "issue",
        [
            ("c", FRUSTRATED),
            ("a", "I am sorry about that."),
            ("c", "Why is this happening? No video"),
        ],
    )
    [labels] = component([doc])
    frustrated = utterance(labels, "issue:0")
    assert frustrated["label"] == "negative" and frustrated["score"] < -0.3
    assert "frustration" in emotions(labels, "issue:0")
    # The agent's apology is a politeness formula, not negativity.
    apology = utterance(labels, "issue:1")
    assert apology["label"] != "negative" and apology["politeness_formula"] is True
    assert "frustration" not in emotions(labels, "issue:1")
    assert utterance(labels, "issue:2")["label"] != "positive"


def test_a_customer_apology_is_still_read(component: SentimentComponent, make_doc) -> None:
    # Only staff formulas are set aside: a customer's "sorry but" is read as written.
    text = "Sorry but this is the worst service I have ever had."
    [labels] = component([make_doc("cust", [("c", text)])])
    value = utterance(labels, "cust:0")
    assert "politeness_formula" not in value
    _, heads = shared_encoder().encode([text])
    assert value["probabilities"]["negative"] == pytest.approx(heads["sentiment"][0, 0], abs=1e-4)
    # The same words from the agent are scored without the apology.
    [labels] = component([make_doc("staff", [("a", text)])])
    assert utterance(labels, "staff:0")["politeness_formula"] is True


# Real agent replies from the support set's sources: courtesy and bad news delivered.
STAFF_REGISTER = [
    "Glad to help. Please make sure that you are signed in to the account you bought it with.",
    "Thanks for reaching out. You can see which stores are open in your area on our site.",
    "This is most likely a temporary issue, but repeated attempts to sync should solve it.",
    "Hi there, glad to assist! Is the issue happening with other games too?",
    "Hey there! If you have feedback on that feature, please share it in the app.",
]


def test_staff_register_is_neutral_unless_the_model_is_sure(
    component: SentimentComponent, make_doc
) -> None:
    turns = [(role, text) for text in STAFF_REGISTER for role in ("c", "a")]
    [labels] = component([make_doc("register", turns)])
    downgraded = 0
    for i, (role, _) in enumerate(turns):
        value = utterance(labels, f"register:{i}")
        probabilities = value["probabilities"]
        argmax = max(probabilities, key=probabilities.get)
        if role == "c" or max(probabilities.values()) >= 0.7:
            assert value["label"] == argmax  # customers' turns are read as the model reads them
        else:
            assert value["label"] == "neutral"
            downgraded += argmax != "neutral"
    # The rule has work to do on these texts: the model leans on some of them.
    assert downgraded >= 1


@pytest.mark.parametrize(
    ("text", "remainder"),
    [
        ("I am sorry about that.", ""),
        (
            "We apologise for the inconvenience. Your refund is on its way!",
            "Your refund is on its way!",
        ),
        ("Unfortunately the item is out of stock.", "the item is out of stock."),
        ("Your order shipped today.", None),
    ],
)
def test_politeness_remainder(text: str, remainder: str | None) -> None:
    assert politeness_remainder(text) == remainder


@pytest.mark.parametrize(
    ("text", "label"), [(NEGATIVE, "negative"), (POSITIVE, "positive"), (NEUTRAL, "neutral")]
)
def test_utterance_labels(component: SentimentComponent, text: str, label: str, make_doc) -> None:
    doc = make_doc("one", [("c", text)])
    [labels] = component([doc])
    value = utterance(labels, "one:0")
    assert value["label"] == label
    probs = value["probabilities"]
    assert sum(probs.values()) == pytest.approx(1.0, abs=1e-3)
    assert value["score"] == pytest.approx(probs["positive"] - probs["negative"], abs=1e-3)


def test_emotions_with_evidence(component: SentimentComponent, make_doc) -> None:
    urgent = "My card was charged twice, I need this fixed asap, it's urgent."
    doc = make_doc(
        "emo",
        [("c", urgent), ("a", "Done, the duplicate charge is refunded."), ("c", POSITIVE)],
    )
    [labels] = component([doc])
    urgency = [a for a in by_label(labels, "emotion") if a.value["emotion"] == "urgency"]
    assert [a.utterance_id for a in urgency] == ["emo:0"]
    assert [urgent[e.start_char : e.end_char] for e in urgency[0].evidence] == ["asap", "urgent"]
    assert "satisfaction" in emotions(labels, "emo:2")
    assert "frustration" not in emotions(labels, "emo:2")
    [model_emotion] = [a for a in by_label(labels, "emotion") if a.utterance_id == "emo:2"]
    assert model_emotion.value["source"] == component.model_id
    assert model_emotion.evidence[0].end_char == len(POSITIVE)


def test_trajectory_per_speaker_and_conversation(component: SentimentComponent, make_doc) -> None:
    turns = [
        ("c", NEGATIVE),
        ("a", "I'm sorry to hear that. Can you give me the order number?"),
        ("c", NEUTRAL),
        ("a", "I've expedited it and refunded the shipping fee."),
        ("c", POSITIVE),
    ]
    doc = make_doc("cv-1", turns)
    [labels] = component([doc])
    [conversation] = by_label(labels, "sentiment.conversation")
    value = conversation.value
    assert value["trajectory"] == "improving" and value["trajectory_basis"] == "customer"
    assert value["end"] - value["start"] >= 0.2
    assert [e.utterance_id for e in conversation.evidence] == ["cv-1:0", "cv-1:4"]
    participants = {
        a.value["participant_id"]: a.value for a in by_label(labels, "sentiment.participant")
    }
    customer = participants["c"]
    assert customer["utterances"] == 3 and customer["trajectory"] == "improving"
    assert customer["start"] < 0 < customer["end"]
    assert participants["a"]["utterances"] == 2


def test_worsening_and_internal_notes_skipped(component: SentimentComponent, make_doc) -> None:
    turns = [
        ("c", "Hi, thanks for the quick reply, that sounds great!"),
        ("a", "Customer is a total nightmare, terrible attitude, ugh."),
        ("c", "This is useless. I want a refund, I'm really angry now."),
    ]
    doc = make_doc("cv-2", turns, internal={1})
    [labels] = component([doc])
    ids = [a.utterance_id for a in by_label(labels, "sentiment.utterance")]
    assert ids == ["cv-2:0", "cv-2:2"]
    assert [a.value["participant_id"] for a in by_label(labels, "sentiment.participant")] == ["c"]
    [conversation] = by_label(labels, "sentiment.conversation")
    assert conversation.value["trajectory"] == "worsening"
    assert all(e.utterance_id != "cv-2:1" for e in conversation.evidence)


def test_one_encoder_pass_shared_and_renewed_on_new_text(
    component: SentimentComponent, make_doc
) -> None:
    from convolens.enrich.dialogue_acts import DialogueActComponent

    doc = make_doc("cv-3", [("c", NEUTRAL), ("a", POSITIVE)])
    first = component([doc])
    cached = doc.cache[CACHE_KEY]
    assert isinstance(cached, EncoderPass) and cached.vectors.shape == (2, 384)
    # The dialogue acts read the very same pass instead of encoding again.
    DialogueActComponent()([doc])
    assert doc.cache[CACHE_KEY] is cached
    assert component([doc]) == first
    # Redaction rewrote the text: the pass is recomputed, not reused.
    doc.conversation.utterances[1].text = "[PERSON] was rude and unhelpful."
    component([doc])
    assert doc.cache[CACHE_KEY] is not cached


def test_batch_of_documents_and_empty(component: SentimentComponent, make_doc) -> None:
    docs = [make_doc("a", [("c", NEGATIVE)]), make_doc("b", [("c", "   ")]), make_doc("c", [])]
    out = component(docs)
    assert len(out) == 3
    assert by_label(out[0], "sentiment.utterance")[0].value["label"] == "negative"
    assert out[1] == [] and out[2] == []


def test_previous_model_still_loads_by_name(embedder: SentenceEmbedder, make_doc) -> None:
    assert ARTEFACT.stat().st_size < 100_000
    assert SentimentModel().coef.shape == (3, 388)
    previous = SentimentComponent({"model": "minilm-vader-lr-v1"}, embedder=embedder)
    assert previous.model_id == "minilm-vader-lr-v1"
    [labels] = previous([make_doc("lr", [("c", NEGATIVE), ("a", POSITIVE)])])
    assert utterance(labels, "lr:0")["label"] == "negative"
    assert utterance(labels, "lr:1")["label"] == "positive"
    assert by_label(labels, "emotion") == []  # the previous model has no emotions
