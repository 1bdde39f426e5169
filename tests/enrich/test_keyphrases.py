"""Keyphrases component: the real MiniLM model through KeyBERT, on real support text."""

from __future__ import annotations

import re

import pytest

from convolens.enrich.base import Annotation
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.keyphrases import (
    KeyphraseComponent,
    _stop_words,
    extract_candidates,
)

CHECKOUT = [
    ("c", "Hi, okay so I'm <PERSON> and my card payment keeps failing at checkout."),
    ("a", "Hello <PERSON>, thanks for reaching out! Sorry to hear the payment failed."),
    ("c", "Yeah, it says the card was declined, but my bank says the card is fine."),
    (
        "a",
        "Okay. Declined card payments at checkout usually mean the billing address on the "
        "order does not match the one your bank has on file.",
    ),
    ("c", "Oh, I moved last month, so the billing address is probably the old one."),
    ("a", "Update the billing address in your profile and retry the payment at checkout."),
    ("c", "That worked, the payment went through. Thank you!"),
    ("a", "Great, glad the payment worked. Have a nice day!"),
]


@pytest.fixture(scope="module")
def component(embedder: SentenceEmbedder) -> KeyphraseComponent:
    return KeyphraseComponent(embedder=embedder)


def phrases(labels: list[Annotation]) -> list[str]:
    return [a.value["phrase"] for a in labels if a.label == "topic.keyphrase"]


def test_failed_card_payment_is_the_topic(component: KeyphraseComponent, make_doc) -> None:
    doc = make_doc("pay", CHECKOUT)
    [labels] = component([doc])
    found = phrases(labels)
    assert 3 <= len(found) <= 5
    assert any("payment" in p or "card" in p for p in found[:3]), found
    # Redaction tags and filler never become topics.
    for phrase in found:
        assert "person" not in phrase
        assert not set(phrase.split()) & {"okay", "yeah", "thank", "thanks", "hi", "hello"}
    ranks = [a.value["rank"] for a in labels if a.label == "topic.keyphrase"]
    assert ranks == list(range(1, len(found) + 1))
    scores = [a.value["score"] for a in labels if a.label == "topic.keyphrase"]
    assert scores == sorted(scores, reverse=True)
    # Every keyphrase label's confidence is its cosine score, clipped to [0, 1].
    for a in labels:
        if a.label == "topic.keyphrase":
            assert a.confidence == pytest.approx(max(0.0, min(1.0, a.value["score"])))
            assert a.utterance_id is None


def test_evidence_points_at_every_occurrence(component: KeyphraseComponent, make_doc) -> None:
    doc = make_doc("ev", CHECKOUT)
    [labels] = component([doc])
    texts = {
        uid: u.text for uid, u in zip(doc.utterance_ids, doc.conversation.utterances, strict=True)
    }
    for a in (a for a in labels if a.label == "topic.keyphrase"):
        phrase = a.value["phrase"]
        assert a.evidence, phrase
        for ev in a.evidence:
            assert texts[ev.utterance_id][ev.start_char : ev.end_char].lower() == phrase
        # All occurrences (up to 5) are cited, in order, and `count` says how many there are.
        pattern = re.compile(r"(?<!\w)" + r"\s+".join(map(re.escape, phrase.split())) + r"(?!\w)")
        expected = [
            (uid, m.start(), m.end())
            for uid, text in texts.items()
            for m in pattern.finditer(text.lower())
        ]
        cited = [(e.utterance_id, e.start_char, e.end_char) for e in a.evidence]
        assert cited == expected[:5]
        assert a.value["count"] == len(expected)
    [conversation] = [a for a in labels if a.label == "topic.conversation"]
    assert conversation.value["phrases"] == phrases(labels)[:3]


def test_payment_spans_are_exact(component: KeyphraseComponent, make_doc) -> None:
    doc = make_doc("spans", CHECKOUT)
    candidates = extract_candidates(
        [(i, u.text) for i, u in enumerate(doc.conversation.utterances)], component.stop
    )
    text = CHECKOUT[0][1]
    [(index, start, end)] = candidates["card payment"].spans
    assert (index, start, end) == (0, text.index("card payment"), text.index(" keeps"))
    # Punctuation ends a run and tags, numbers and ids are never part of a candidate.
    assert "checkout yeah" not in candidates and "fine oh" not in candidates
    assert not any("person" in p for p in candidates)


def test_candidates_skip_noise() -> None:
    stop = _stop_words()
    text = (
        "Order ORD-55812 for $29,952 failed, see https://example.com/x or mail "
        "<EMAIL_ADDRESS> @northwind: 2FA reset on the sign-in page, okay? Ask "
        "<PERSON_1a2b3c4d> about it."
    )
    found = extract_candidates([(0, text)], stop)
    assert "2fa reset" in found and "sign-in page" in found
    for phrase in found:
        assert not re.search(r"\d{3}|https|example|email|northwind|okay|person", phrase), phrase


def test_internal_notes_and_bots_are_not_topics(embedder: SentenceEmbedder, make_doc) -> None:
    component = KeyphraseComponent({"top_n": 8, "min_score": -1.0}, embedder=embedder)
    doc = make_doc(
        "notes",
        [
            ("c", "My parcel never arrived and the tracking number shows nothing."),
            ("a", "Internal: customer is a reseller, check the warehouse spreadsheet."),
            ("a", "I am sorry, I have asked the courier to trace the parcel."),
        ],
        internal={1},
    )
    [labels] = component([doc])
    cited = {e.utterance_id for a in labels for e in a.evidence}
    assert "notes:1" not in cited
    assert not any("warehouse" in p or "reseller" in p for p in phrases(labels))
    assert any("parcel" in p or "tracking" in p for p in phrases(labels)[:2])


def test_batch_and_empty_documents(component: KeyphraseComponent, make_doc) -> None:
    docs = [
        make_doc("empty", [("c", "ok thanks"), ("a", "You're welcome!")]),
        make_doc(
            "pw",
            [
                ("c", "I forgot my password and the password reset email never arrives."),
                ("a", "I sent a new password reset link; check the spam folder too."),
            ],
        ),
    ]
    empty, password = component(docs)
    assert empty == []
    assert any("password" in p for p in phrases(password)[:2])


def test_settings_are_validated(embedder: SentenceEmbedder) -> None:
    with pytest.raises(ValueError, match="top_nn"):
        KeyphraseComponent({"top_nn": 3}, embedder=embedder)
    component = KeyphraseComponent({"method": "maxsum", "top_n": 3}, embedder=embedder)
    assert component.settings.method == "maxsum"
    assert component.name == "topics"
    assert component.model_id == embedder.model_id
    # KeyBERT wraps the embedder's own model: no second copy is loaded.
    assert component.keybert.model.embedding_model is embedder._model
