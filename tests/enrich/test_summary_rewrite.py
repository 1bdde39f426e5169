"""The overview's rewriting rules on real dialogue lines (DialogSum train), the learned
content selector on a real DialogSum dialogue, and the topic cues of the segmentation."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from convolens.enrich.base import Doc
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.nlp import shared_nlp
from convolens.enrich.summary import SummaryComponent
from convolens.enrich.summary.extractive import SENTENCE
from convolens.enrich.summary.overview import join_parts, point_renderer
from convolens.enrich.summary.segmentation import texttiling, topic_cues
from convolens.enrich.summary.selector import ContentSelector, SentenceInfo, choose_points
from convolens.enrich.summary.text import strip_lead_in
from convolens.model import Conversation

PEOPLE = ["#Person1#", "#Person2#"]
DIALOGSUM = (
    Path(__file__).resolve().parents[3]
    / "shared/data/summaries/dialogsum/train_rev2021-05-26/dialogsum.train.jsonl"
)


@pytest.fixture(scope="module")
def nlp() -> Any:
    return shared_nlp()


def said(nlp: Any, speaker: str, text: str, people: list[str] = PEOPLE) -> str:
    render = point_renderer(nlp, people, None, "other")
    return render({"speaker": speaker, "text": strip_lead_in(text)})


def test_imperatives_are_reported_requests(nlp: Any) -> None:
    assert said(nlp, "#Person1#", "Fill in the form, please.") == (
        "#Person1# asks #Person2# to fill in the form"
    )
    # "please" is cut wherever it stands, and the addressee's "me" becomes the speaker.
    assert said(nlp, "#Person2#", "Please give me six-piece chicken nuggets and a coke.") == (
        "#Person2# asks #Person1# to give #Person2# six-piece chicken nuggets and a coke"
    )
    assert said(nlp, "#Person1#", "Let's work out on arms and stomach today.") == (
        "#Person1# suggests they work out on arms and stomach today"
    )
    assert said(nlp, "#Person2#", "Let me try.") == "#Person2# wants to try"


def test_statements_are_told_to_the_other_speaker(nlp: Any) -> None:
    assert said(nlp, "#Person1#", "The fitting room is in the corner.") == (
        "#Person1# tells #Person2# the fitting room is in the corner"
    )
    # First person turns into the speaker, with the verb in the third person.
    assert said(nlp, "#Person2#", "I've been having trouble breathing lately.") == (
        "#Person2# has been having trouble breathing lately"
    )
    # Filler before it and a term of address after it go.
    assert said(nlp, "#Person1#", "Well, I know we bought this house together, #Person2#.") == (
        "#Person1# knows they bought this house together"
    )


def test_questions_keep_titles_adverbs_and_plurals(nlp: Any) -> None:
    people = ["Mr. Hanks", "#Person2#"]
    assert said(nlp, "#Person2#", "What kind of flowers do you want?", people) == (
        "#Person2# asks Mr. Hanks what kind of flowers Mr. Hanks wants"
    )
    assert said(nlp, "#Person1#", "Did you ever take history 231?") == (
        "#Person1# asks #Person2# whether #Person2# ever took history 231"
    )
    assert said(nlp, "#Person1#", "Have you caught the mouse yet?").startswith(
        "#Person1# asks #Person2# whether #Person2# has caught the mouse"
    )
    assert said(nlp, "#Person2#", "When do we arrive in Beijing?") == (
        "#Person2# asks #Person1# when they arrive in Beijing"
    )


def test_questions_that_ask_for_something_are_requests(nlp: Any) -> None:
    # "Could you ...?" asks the listener to do it, as the references put it.
    assert said(nlp, "#Person1#", "Could you get me a taxi?") == (
        "#Person1# asks #Person2# to get #Person1# a taxi"
    )
    assert said(nlp, "#Person1#", "Can you tell me the way to the station?") == (
        "#Person1# asks #Person2# to tell #Person1# the way to the station"
    )
    # An offer, a state and the speaker's own request stay questions.
    assert said(nlp, "#Person1#", "Would you like some tea?") == (
        "#Person1# asks #Person2# whether #Person2# would like some tea"
    )
    assert said(nlp, "#Person1#", "Will you be free tomorrow?") == (
        "#Person1# asks #Person2# whether #Person2# will be free tomorrow"
    )
    assert said(nlp, "#Person1#", "Could I have the bill?") == (
        "#Person1# asks #Person2# whether #Person1# could have the bill"
    )


def test_stage_directions_titles_and_names(nlp: Any) -> None:
    assert strip_lead_in("(Pointing to the menu) I'll take this and this.") == (
        "I'll take this and this."
    )
    text = "Jessie can't believe Mr. Fro wasn't satisfied with our ad ideas. He hated them."
    assert [m.group(0) for m in SENTENCE.finditer(text)] == [
        "Jessie can't believe Mr. Fro wasn't satisfied with our ad ideas.",
        "He hated them.",
    ]
    assert [m.group(0) for m in SENTENCE.finditer("Is that the No. 7 bus? No. It's late.")] == [
        "Is that the No. 7 bus?",
        "No.",
        "It's late.",
    ]
    # Joined parts keep a name's capital and lower a function word's.
    line = join_parts(["Tom is going fishing", "John Smith is the chairman", "It rains"], [])
    assert line == "Tom is going fishing; John Smith is the chairman; it rains."


def dialogsum_doc(row: dict[str, str]) -> Doc:
    turns = [line.split(":", 1) for line in row["dialogue"].split("\n") if ":" in line]
    conversation = Conversation.model_validate(
        {
            "conversation_id": row["fname"],
            "channel": "chat",
            "source": {"system": "dialogsum", "source_id": row["fname"]},
            "participants": [{"participant_id": p} for p in dict.fromkeys(s for s, _ in turns)],
            "utterances": [{"participant_id": s, "text": t.strip()} for s, t in turns],
        }
    )
    ids = [f"{row['fname']}:{i}" for i in range(len(turns))]
    return Doc(row["fname"], 1, conversation, ids)


def test_shipped_selector_artefact() -> None:
    selector = ContentSelector()
    assert selector.model_id.startswith("summary-selector-lr")
    assert 10 <= selector.budget_words <= 40
    # The budget follows the conversation's length, never under its floor.
    short = [SentenceInfo(0, "a", "We met at the station.", True)]
    long = [SentenceInfo(k, "a", "We talked about the long trip to the coast. " * 3, True)
            for k in range(20)]  # fmt: skip
    assert 8 <= selector.budget(short) < selector.budget(long) <= 120
    assert 0 <= selector.overflow <= 10
    assert selector.metadata["train_dialogues"] >= 1000
    features = np.zeros((2, len(selector.coef)), dtype=np.float32)
    scores = selector.score(features)
    assert scores.shape == (2,) and np.all((scores > 0) & (scores < 1))
    with pytest.raises(ValueError, match="features"):
        selector.score(np.zeros((1, 3)))


def test_choose_points_packs_the_best_within_the_budget() -> None:
    said = ["one two three four five six", "a b c d", "x y z w v u t s", "p q r"]
    scores = np.array([0.9, 0.2, 0.8, 0.1])
    # The best always; the next best (8 words) does not fit 10, the two short ones do.
    assert [k for k, _ in choose_points(said.__getitem__, scores, 10)] == [0, 1]
    # With an overflow of 5 the second best may run past the budget; then it is full.
    assert [k for k, _ in choose_points(said.__getitem__, scores, 10, overflow=5)] == [0, 2]


@pytest.mark.skipif(not DIALOGSUM.exists(), reason="shared DialogSum data not present")
def test_learned_overview_on_a_real_dialogue(embedder: SentenceEmbedder) -> None:
    with DIALOGSUM.open(encoding="utf-8") as handle:
        row = ast.literal_eval(next(handle))  # train_0: a check-up with Dr. Hawkins
    doc = dialogsum_doc(row)
    [labels] = SummaryComponent(embedder=embedder)([doc])
    [label] = [a for a in labels if a.label == "summary.extractive"]
    value = label.value
    assert value["type"] == "other"
    points = value["fields"]["key_points"]
    assert 1 <= len(points) <= 4 and all("score" in p for p in points)
    # Every key point quotes its utterance and is in the label's evidence.
    texts = dict(zip(doc.utterance_ids, (u.text for u in doc.conversation.utterances), strict=True))
    spans = {(e.utterance_id, e.start_char, e.end_char) for e in label.evidence}
    for p in points:
        assert texts[p["utterance_id"]][p["start"] : p["end"]].strip()
        assert (p["utterance_id"], p["start"], p["end"]) in spans
    line = value["text"]
    assert line.endswith(".") and len(line.split()) <= 40
    # The reference: "Mr. Smith's getting a check-up, and Doctor Hawkins advises him to
    # have one every year. Hawkins'll give some information about their classes and
    # medications to help Mr. Smith quit smoking."
    anchors = ("check-up", "every year", "quit", "classes", "medications", "smok")
    assert sum(a in line for a in anchors) >= 2, line
    # Greetings, thanks and verbless answers ("Yes.", "Ok, thanks doctor.") are no part.
    for said_nothing in ("Hi", "Thanks", "thanks", "Ok", "Yes"):
        assert said_nothing not in line.replace(",", " ").split(), line
    # The summary v2 selector is kept as a baseline and still gives a line.
    [old] = SummaryComponent({"selector": "centrality"}, embedder=embedder)([dialogsum_doc(row)])
    assert old[0].value["text"] and "score" not in str(old[0].value["fields"]["key_points"])


def test_topic_cues_tip_a_weak_shift() -> None:
    said = [
        "Okay, let's move on to the project evaluation.",
        "Now we're gonna look at finances.",
        "I think the buttons should be rubber.",
    ]
    assert topic_cues(said).tolist() == [1.0, 1.0, 0.0]
    # Two blocks that differ a little: no boundary, unless the turn after the shift
    # announces a new topic.
    rng = np.random.default_rng(1)
    base = rng.standard_normal(8)
    blocks = [base + 0.6 * np.eye(8)[k] + 0.4 * rng.standard_normal((40, 8)) for k in (0, 1)]
    vectors = np.vstack(blocks)
    cues = np.zeros(80)
    cues[40] = 1.0
    settings = {"window": 10, "depth": 3.0, "min_turns": 15, "most": 4, "smooth": 5}
    assert 40 not in texttiling(vectors, **settings)  # type: ignore[arg-type]
    found = texttiling(vectors, cues=cues, cue_bonus=3.0, **settings)  # type: ignore[arg-type]
    assert found == [40]


def test_pseudonymised_participants_are_numbered_by_role() -> None:
    # Intake redaction turns an id that spelled a name into "customer-830b1fd0a7"; a
    # summary that says "customer-830b1fd0a7 will send the deck" helps no one.
    from convolens.enrich.summary.text import speaker_names
    from convolens.model import Conversation

    conversation = Conversation.model_validate(
        {
            "conversation_id": "m1",
            "channel": "meeting",
            "source": {"system": "test"},
            "participants": [
                {"participant_id": "customer-830b1fd0a7", "role": "customer", "name": "<PERSON>"},
                {"participant_id": "customer-1c2d3e4f5a", "role": "customer", "name": "<PERSON>"},
                {"participant_id": "unknown-0a1b2c3d4e", "role": "unknown"},
                {"participant_id": "a1", "role": "agent", "name": "Dana Ruiz"},
            ],
            "utterances": [{"participant_id": "a1", "text": "Let's start."}],
        }
    )
    assert speaker_names(conversation) == {
        "customer-830b1fd0a7": "Customer 1",
        "customer-1c2d3e4f5a": "Customer 2",
        "unknown-0a1b2c3d4e": "Participant 1",
        "a1": "Dana",
    }
