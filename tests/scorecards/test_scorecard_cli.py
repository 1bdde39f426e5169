"""`convolens scorecard ...` and `convolens coaching` as a user runs them."""

from __future__ import annotations

import json
from pathlib import Path

from scorecard_corpus import HAND_SCORES, cli

from convolens.scorecards.definition import DATA


def test_validate_reports_ok_and_errors_with_exit_codes(tmp_path: Path) -> None:
    done = cli("scorecard", "validate", str(DATA / "support.yaml"), str(DATA / "sales.yaml"))
    assert done.returncode == 0, done.stderr
    assert "ok support.yaml: support@1+" in done.stdout and "ok sales.yaml" in done.stdout
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\nversion: '1'\nsections:\n  - name: a\n    criteria: []\n")
    done = cli("scorecard", "validate", str(bad))
    assert done.returncode == 1
    assert "bad.yaml: line 5: sections[0] (a).criteria: List should have at least 1" in " ".join(
        done.stderr.split()
    )
    assert "Traceback" not in done.stderr and str(tmp_path) not in done.stderr


def test_show_review_calibration_and_coaching(scored_copy: Path) -> None:
    db = ["--db", str(scored_copy)]
    shown = cli("scorecard", "show", "call-20261117-0031", *db, "--json")
    assert shown.returncode == 0, shown.stderr
    (support,) = json.loads(shown.stdout)
    outcomes = {c["criterion"]: c for c in support["criteria"]}
    assert outcomes["identity_before_account"]["outcome"] == "fail"
    assert outcomes["identity_before_account"]["quotes"] == ["your account"]
    reviewed = cli("scorecard", "review", "--file", str(HAND_SCORES), *db)
    assert reviewed.returncode == 0, reviewed.stderr
    assert "recorded 184 criterion outcome(s) from hand_scores.yaml" in reviewed.stdout
    report = cli("scorecard", "calibration", *db)
    assert report.returncode == 0, report.stderr
    assert "184 review(s) of 20 conversation(s)" in report.stdout and "DISAGREE" in report.stdout
    coaching = cli("coaching", *db, "--json")
    assert coaching.returncode == 0, coaching.stderr
    data = json.loads(coaching.stdout)
    assert data["scorecard"] == "support" and data["coaching_list"]
    missing = cli("scorecard", "show", "no-such-conversation", *db)
    assert missing.returncode == 1 and "no conversation matches" in missing.stderr


def test_score_with_a_new_scorecard_version_then_diff(scored_copy: Path, tmp_path: Path) -> None:
    db = ["--db", str(scored_copy)]
    text = (DATA / "sales.yaml").read_text(encoding="utf-8")
    edited = tmp_path / "sales-v2.yaml"
    # Version 2 lets reps talk up to 70 % of a call.
    edited.write_text(
        text.replace('version: "1"', 'version: "2"').replace(
            "metric: agent_talk_share, max: 0.6}", "metric: agent_talk_share, max: 0.7}"
        ),
        encoding="utf-8",
    )
    scored = cli("scorecard", "score", "--scorecard", str(edited), *db)
    assert scored.returncode == 0, scored.stderr
    assert "with sales@2+" in scored.stdout
    again = cli("scorecard", "score", "--scorecard", str(edited), *db)
    assert "scored 0 conversation(s)" in again.stdout  # nothing left for this version
    diff = cli("scorecard", "diff", "--scorecard", "sales", *db)
    assert diff.returncode == 0, diff.stderr
    assert "sales@1+" in diff.stdout and "-> sales@2+" in " ".join(diff.stdout.split())
    # call-20261019-0016: the rep talked more than 60 % but less than 70 %.
    moved = [line for line in diff.stdout.splitlines() if "rep_talk_share" in line]
    assert any("call-20261019-0016" in line and "fail" in line for line in moved), diff.stdout
