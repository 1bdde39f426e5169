"""Scorecard files: the shipped ones validate; bad ones fail naming line, field and fix."""

from __future__ import annotations

from pathlib import Path

import pytest

from convolens.scorecards import DEFAULT_SCORECARDS, ScorecardError, load_scorecard
from convolens.scorecards.definition import load_scorecards

GOOD = """\
name: mini
version: "1"
sections:
  - name: opening
    criteria:
      - id: greeting
        description: Greets.
        check: {kind: say, phrases: [hello], window: {first_turns: 2}}
"""


def test_shipped_scorecards_validate_with_their_criteria() -> None:
    support, sales = load_scorecards()
    assert [c.name for c in (support, sales)] == ["support", "sales"]
    assert {c.id for c in support.criteria} >= {
        "greeting", "identity_before_account", "empathy", "resolved", "recap_next_steps",
        "closing", "no_abusive_language", "refund_timeline", "agent_talk_share", "dead_air",
    }  # fmt: skip
    assert support.criterion("no_abusive_language").auto_fail
    assert support.criterion("identity_before_account").required_step
    assert support.scorecard_version.startswith("support@1+")
    assert len(DEFAULT_SCORECARDS) == 2


def test_version_changes_with_content_even_without_a_bump() -> None:
    first = load_scorecard(GOOD)
    edited = load_scorecard(GOOD.replace("[hello]", "[hello, hi]"))
    assert first.version == edited.version == "1"
    assert first.scorecard_version != edited.scorecard_version


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (GOOD.replace("phrases: [hello], ", ""), "line 8: sections[0] (opening).criteria[0] "
         "(greeting).check: give at least one phrase or example"),
        (GOOD.replace("kind: say", "kind: shout"), "line 8: sections[0] (opening).criteria[0] "
         "(greeting).check: Input tag 'shout'"),
        (GOOD.replace('version: "1"', "version: 1.10"), 'line 2: version: quote the version'),
        (GOOD.replace("description: Greets.", "description: Greets.\n        weight: 0"),
         "line 8: sections[0] (opening).criteria[0] (greeting).weight: Input should be greater"),
        (GOOD + "      - id: greeting\n        description: again\n"
         "        check: {kind: resolution}\n", "criterion ids must be unique: greeting"),
        (GOOD.replace("{kind: say, phrases: [hello], window: {first_turns: 2}}",
                      "{kind: dynamics, metric: agent_talk_share}"), "check: give min or max"),
        (GOOD.replace("{kind: say, phrases: [hello], window: {first_turns: 2}}",
                      "{kind: resolution, statuses: [fixed]}"), "check.statuses[0]: Input should"),
        (GOOD + "extra: 1\n", "line 9: extra: Extra inputs are not permitted"),
        ("name: x\nsections: [\n", "scorecard line 3: not valid YAML"),
    ],
)  # fmt: skip
def test_errors_name_line_and_field(text: str, expected: str) -> None:
    with pytest.raises(ScorecardError) as caught:
        load_scorecard(text)
    assert expected in str(caught.value)
    assert "Traceback" not in str(caught.value)


def test_file_errors_name_the_file_not_its_folder(tmp_path: Path) -> None:
    path = tmp_path / "team.yaml"
    path.write_text(GOOD.replace("kind: say", "kind: nope"), encoding="utf-8")
    with pytest.raises(ScorecardError, match=r"^team\.yaml: line 8: ") as caught:
        load_scorecard(path)
    assert str(tmp_path) not in str(caught.value)
    with pytest.raises(ScorecardError, match=r"^missing\.yaml: cannot read"):
        load_scorecard(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # A "billion laughs": tiny as text, 59,000 nodes as data.
        ("a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
         "c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
         "e: [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n", "over 20,000 YAML nodes"),
        ("{[a]: 1}", "keys must be plain names"),
        ("[" * 5000, "nested too deeply"),
        ("/etc/passwd", "a scorecard is a mapping"),  # content, never a path
    ],
)  # fmt: skip
def test_hostile_content_is_refused_cleanly(text: str, expected: str) -> None:
    from convolens.scorecards.definition import parse_scorecard

    with pytest.raises(ScorecardError, match=expected):
        parse_scorecard(text)
