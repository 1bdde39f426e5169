"""Entities component: the packaged spaCy model and the shipped team definitions, offline."""

from __future__ import annotations

from pathlib import Path

import pytest

from convolens.enrich.base import Annotation, Doc
from convolens.enrich.entities import DEFAULT_ENTITIES, EntityComponent, load_entities
from convolens.enrich.nlp import PARSED_KEY


@pytest.fixture(scope="module")
def component() -> EntityComponent:
    return EntityComponent()


def spans(doc: Doc, labels: list[Annotation], name: str = "entity.mention") -> list[str]:
    """The text each label's evidence points at, in order."""
    out = []
    for a in labels:
        if a.label == name:
            [ev] = a.evidence
            text = doc.conversation.utterances[doc.utterance_ids.index(ev.utterance_id)].text
            out.append(text[ev.start_char : ev.end_char])
    return out


def mention(labels: list[Annotation], text: str) -> dict:
    """The value of the first mention with this text (there must be one)."""
    found = [a.value for a in labels if a.label == "entity.mention" and a.value["text"] == text]
    assert found, f"no mention {text!r}"
    return found[0]


def test_default_definitions_and_lineage(component: EntityComponent) -> None:
    definitions = load_entities(DEFAULT_ENTITIES)
    assert {"competitor", "plan", "role"} <= {d.type for d in definitions}
    # People, organisations and places: the NER trained here; other types: spaCy's.
    assert component.model_id is not None
    assert component.model_id.startswith("convolens-ner-minilm-")
    assert component.model_id.endswith("+en_core_web_sm-3.8.0")
    assert len(component.taxonomy_version or "") == 12
    other = EntityComponent({"definitions": [{"type": "plan", "name": "Gold plan"}]})
    assert other.taxonomy_version != component.taxonomy_version


def test_introduction_gives_org_competitor_person_and_affiliation(
    component: EntityComponent, make_doc
) -> None:
    text = "Hi, this is Dana from Acme Corp, we're thinking about moving to CompetitorX"
    doc = make_doc("intro", [("c", text), ("a", "Happy to help, Dana.")])
    [labels] = component([doc])
    assert mention(labels, "Acme Corp") == {
        "type": "organization",
        "text": "Acme Corp",
        "canonical": "Acme Corp",
        "source": "ner",
        "ner_label": "ORG",
    }
    assert mention(labels, "CompetitorX") == {
        "type": "competitor",
        "text": "CompetitorX",
        "canonical": "CompetitorX",
        "source": "ruler",
    }
    assert mention(labels, "Dana")["type"] == "person"
    assert texts_at(labels, "intro:1") == ["Dana"]
    competitor = next(a for a in labels if a.value.get("text") == "CompetitorX")
    assert (competitor.evidence[0].start_char, competitor.evidence[0].end_char) == (64, 75)
    assert competitor.confidence == 1.0 and competitor.utterance_id == "intro:0"

    [affiliation] = [a for a in labels if a.label == "participant.affiliation"]
    assert affiliation.value == {
        "participant_id": "c",
        "role": "customer",
        "company": "Acme Corp",
        "text": "Acme Corp",
        "name": "Dana",
        "cue": "self_introduction",
    }
    assert spans(doc, labels, "participant.affiliation") == ["this is Dana from Acme Corp"]
    assert affiliation.confidence == 0.9  # NER already called it an organisation


def test_affiliation_cues_and_non_cues(component: EntityComponent, make_doc) -> None:
    doc = make_doc(
        "aff",
        [
            ("a", "Thanks for calling Acme, this is Sam."),
            ("c", "I'm calling from Globex about my invoice."),
            ("c", "I got an email from Initech yesterday."),
            ("c", "I'm calling from home, and from the UK office."),
        ],
    )
    [labels] = component([doc])
    found = [a.value for a in labels if a.label == "participant.affiliation"]
    assert [(v["participant_id"], v["company"], v["cue"]) for v in found] == [
        ("a", "Acme", "greeting"),
        ("c", "Globex", "self_introduction"),
    ]
    assert spans(doc, labels, "participant.affiliation") == [
        "Thanks for calling Acme",
        "I'm calling from Globex",
    ]
    # The stated company is an organisation even where the small NER model guessed else.
    assert mention(labels, "Acme")["type"] == "organization"
    assert mention(labels, "Globex")["type"] == "organization"


def test_pii_tags_never_become_entities(component: EntityComponent, make_doc) -> None:
    doc = make_doc(
        "pii",
        [
            ("c", "hello <PERSON>, my email is <EMAIL_ADDRESS>, I paid $49 for the Pro plan"),
            ("c", "<PERSON>'s account was charged twice, call <PHONE_NUMBER>"),
            ("c", "my name is <PERSON_1a2b3c4d> from Vandelay"),
        ],
    )
    [labels] = component([doc])
    texts = spans(doc, labels)
    assert not [t for t in texts if "<" in t or ">" in t or "PERSON" in t]
    assert mention(labels, "$49")["type"] == "money"
    assert mention(labels, "Pro plan")["canonical"] == "Pro plan"
    [affiliation] = [a.value for a in labels if a.label == "participant.affiliation"]
    # The redacted name stays unknown; the company is the team's canonical name.
    assert (affiliation["company"], affiliation["name"]) == ("Vandelay Industries", None)


def test_team_match_wins_over_ner_and_aliases_canonicalise(
    component: EntityComponent, make_doc
) -> None:
    doc = make_doc(
        "team",
        [
            ("c", "We used Hooli before and the Enterprise plan there was cheaper."),
            ("c", "Is the pro tier or the Pro plan better? Let me ask my account executive."),
            ("a", "I can put you through to a supervisor."),
        ],
    )
    [labels] = component([doc])
    assert mention(labels, "Hooli")["type"] == "competitor"
    assert texts_at(labels, "team:0") == ["Hooli", "Enterprise plan"]
    assert mention(labels, "pro tier")["canonical"] == "Pro plan"
    # Token pattern ("account" + "executive"), and the longer match beats "manager"-like roles.
    assert mention(labels, "account executive")["canonical"] == "account manager"
    assert mention(labels, "supervisor")["type"] == "role"
    [summary] = [a for a in labels if a.label == "entity.summary"]
    counts = {(e["type"], e["canonical"]): e["count"] for e in summary.value["entities"]}
    assert counts[("plan", "Pro plan")] == 2
    assert counts[("competitor", "Hooli")] == 1
    assert summary.value["unique_by_type"]["plan"] == 2
    assert summary.utterance_id is None and len(summary.evidence) == len(counts)


def texts_at(labels: list[Annotation], uid: str) -> list[str]:
    return [
        a.value["text"] for a in labels if a.label == "entity.mention" and a.utterance_id == uid
    ]


def test_custom_definitions_token_patterns_and_case(make_doc) -> None:
    component = EntityComponent(
        {
            "definitions": [
                {
                    "type": "product",
                    "name": "Widget Pro",
                    "patterns": [[{"LOWER": "widget"}, {"LOWER": "pro"}, {"IS_DIGIT": True}]],
                },
                {"type": "competitor", "name": "Apex", "case_sensitive": True},
            ]
        }
    )
    doc = make_doc("custom", [("c", "My widget pro 2 broke, apex of my week. Apex fixed theirs.")])
    [labels] = component([doc])
    assert texts_at(labels, "custom:0")[:1] == ["widget pro 2"]
    assert mention(labels, "widget pro 2")["canonical"] == "Widget Pro"
    assert [a.value["text"] for a in labels if a.value.get("type") == "competitor"] == ["Apex"]


def test_invalid_definitions_name_the_problem(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"entity 'X'.*type"):
        load_entities([{"type": "Bad Type", "name": "X"}])
    with pytest.raises(ValueError, match="duplicate entities: plan:gold"):
        load_entities([{"type": "plan", "name": "Gold"}, {"type": "plan", "name": "gold"}])
    with pytest.raises(ValueError, match="aliases"):
        load_entities([{"type": "plan", "name": "Gold", "aliases": [" "]}])
    with pytest.raises(ValueError, match="invalid token pattern"):
        EntityComponent(
            {"definitions": [{"type": "plan", "name": "G", "patterns": [[{"NOPE": 1}]]}]}
        )
    path = tmp_path / "e.toml"
    path.write_text('[[entity]]\ntype = "plan"\nname = "Gold"\ntypo = 1\n')
    with pytest.raises(ValueError, match=r"e\.toml: entity 'Gold': typo"):
        load_entities(path)


def test_internal_notes_skipped_and_parses_shared(component: EntityComponent, make_doc) -> None:
    doc = make_doc(
        "notes",
        [("c", "Initech quoted us less."), ("a", "Note: Hooli account, escalate.")],
        internal={1},
    )
    [labels] = component([doc])
    assert {a.utterance_id for a in labels if a.label == "entity.mention"} == {"notes:0"}
    first = doc.cache[PARSED_KEY]
    component([doc])
    assert doc.cache[PARSED_KEY] is first  # parsed once per run, not per component call
    doc.conversation.utterances[0].text = "Hooli quoted us less."
    [labels] = component([doc])
    # A rewritten text (as after redaction) is parsed again; the unchanged one is reused.
    now = doc.cache[PARSED_KEY]
    assert now is not first and now[0] is not first[0] and now[1] is first[1]
    assert texts_at(labels, "notes:0") == ["Hooli"]


def test_definitions_from_a_toml_file(tmp_path: Path, make_doc) -> None:
    path = tmp_path / "team.toml"
    path.write_text(
        '[[entity]]\ntype = "plan"\nname = "Gold plan"\naliases = ["gold tier"]\n',
        encoding="utf-8",
    )
    component = EntityComponent({"entities_file": str(path)})
    assert [d.name for d in component.definitions] == ["Gold plan"]
    doc = make_doc("file", [("c", "Is the gold tier worth it?")])
    [labels] = component([doc])
    assert mention(labels, "gold tier")["canonical"] == "Gold plan"
    assert spans(doc, labels) == ["gold tier"]
