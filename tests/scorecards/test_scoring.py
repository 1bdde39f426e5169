"""Auto-QA on the sample corpus: specific criteria pass and fail, with the right words as
evidence; rescoring with a new scorecard version writes beside the old one; diff."""

from __future__ import annotations

from pathlib import Path

from convolens.enrich.runner import enrich
from convolens.scorecards.component import ScorecardComponent
from convolens.scorecards.definition import DATA, load_scorecard
from convolens.scorecards.diff import diff_versions, versions_of
from convolens.scorecards.store import ConversationScore, conversation_scores, scores_table
from convolens.store.warehouse import Warehouse


def _score(db: Path, source_id: str, scorecard: str) -> tuple[ConversationScore, dict[str, str]]:
    """The conversation's score and the text of every utterance, by utterance id."""
    with Warehouse(db, read_only=True) as warehouse:
        cid = warehouse.resolve_id(source_id)
        (score,) = conversation_scores(warehouse, cid, scorecard=scorecard)
        texts = {
            r["utterance_id"]: r["text"]
            for r in warehouse.query(
                "SELECT utterance_id, text FROM utterances_current WHERE conversation_id = ?", [cid]
            )
        }
    return score, texts


def _evidence(score: ConversationScore, criterion: str, texts: dict[str, str]) -> list[str]:
    (found,) = [c for c in score.criteria if c.criterion == criterion]
    return [texts[e["utterance_id"]][e["start"] : e["end"]] for e in found.evidence]


def _outcomes(score: ConversationScore) -> dict[str, str]:
    return {c.criterion: c.outcome for c in score.criteria}


def test_short_billing_call_misses_the_identity_check_and_the_closing(scored_db: Path) -> None:
    score, texts = _score(scored_db, "call-20261117-0031", "support")
    outcomes = _outcomes(score)
    assert outcomes["greeting"] == "pass"
    assert _evidence(score, "greeting", texts) == ["Thank you for calling"]
    # "Thank you for calling Northwind support." gives no name.
    assert outcomes["introduces_self"] == "fail"
    # "Let me check your account." comes with no verification before it.
    assert outcomes["identity_before_account"] == "fail"
    assert _evidence(score, "identity_before_account", texts) == ["your account"]
    # A refund is discussed, and its timeline given: "The refund will arrive in five days."
    assert outcomes["refund_timeline"] == "pass"
    assert _evidence(score, "refund_timeline", texts) == ["days"]
    assert outcomes["empathy"] == "pass"
    assert _evidence(score, "empathy", texts) == ["sorry"]
    assert outcomes["closing"] == "fail"
    # Timed call: the dynamics apply (and this brisk call has no long silence).
    assert outcomes["dead_air"] == "pass"
    assert score.score is not None and 0 < score.score < 100
    assert score.passed is False


def test_identity_verified_before_the_account_passes_with_both_steps(scored_db: Path) -> None:
    score, texts = _score(scored_db, "call-20260922-0009", "support")
    outcomes = _outcomes(score)
    assert outcomes["identity_before_account"] == "pass"
    # "First I need to verify your identity before I touch anything on the account."
    assert _evidence(score, "identity_before_account", texts) == ["verify", "the account"]
    assert outcomes["greeting"] == outcomes["closing"] == "pass"
    assert outcomes["refund_timeline"] == "na"  # no refund in a 2FA lockout call


def test_chat_without_verification_fails_and_written_channels_are_not_applicable(
    scored_db: Path,
) -> None:
    chat, texts = _score(scored_db, "chat-20260903-0001", "support")
    assert _outcomes(chat)["identity_before_account"] == "fail"
    assert _evidence(chat, "identity_before_account", texts) == ["I can see"]
    ticket, _ = _score(scored_db, "4312", "support")
    reason = next(c.reason for c in ticket.criteria if c.criterion == "identity_before_account")
    assert reason.startswith("not applicable: channel ticket")
    # Chats have no timings: the call dynamics section is N/A, not failed.
    assert {_outcomes(chat)[c] for c in ("agent_talk_share", "monologue", "dead_air")} == {"na"}
    assert chat.sections["call_dynamics"] is None


def test_sales_call_discovery_passes_and_talk_share_fails(scored_db: Path) -> None:
    score, texts = _score(scored_db, "call-20260915-0007", "sales")
    outcomes = _outcomes(score)
    assert outcomes["discovery_question"] == "pass"
    assert _evidence(score, "discovery_question", texts) == ["what made you"]
    assert outcomes["pricing_clarity"] == "pass"
    assert outcomes["no_guarantees"] == "pass"  # "Guaranteed." is the prospect's word
    assert outcomes["rep_talk_share"] == "fail"
    reason = next(c.reason for c in score.criteria if c.criterion == "rep_talk_share")
    assert reason.startswith("agent_talk_share 0.") and "above 0.6" in reason
    # Only the sales scorecard applies to a sales call.
    with Warehouse(scored_db, read_only=True) as warehouse:
        cards = {s.scorecard for s in conversation_scores(warehouse, score.conversation_id)}
    assert cards == {"sales"}


def test_meetings_get_no_scorecard(scored_db: Path) -> None:
    with Warehouse(scored_db, read_only=True) as warehouse:
        scored = {r["source_id"] for r in scores_table(warehouse)}
        meetings = {
            r["source_id"]
            for r in warehouse.query(
                "SELECT source_id FROM conversations_current WHERE channel = 'meeting'"
            )
        }
    assert meetings and not meetings & scored
    assert len(scored) >= 35


def _custom(text: str, tmp_path: Path) -> Path:
    path = tmp_path / "custom.yaml"
    path.write_text(text, encoding="utf-8")
    return path


CUSTOM = """\
name: compliance
version: "1"
applies_when: {channels: [call]}
sections:
  - name: words
    criteria:
      - id: no_guarantee_talk
        description: Nobody on the call says guarantee.
        auto_fail: true
        check: {kind: forbidden, speaker: any, phrases: [guaranteed, guarantee]}
      - id: billing_greeting
        description: Billing calls open with thanks.
        applies_when: {queues: [billing]}
        check: {kind: say, phrases: [thank you for calling], window: {first_turns: 1}}
"""


def test_forbidden_phrase_auto_fails_and_queue_conditions_apply(
    scored_copy: Path, tmp_path: Path
) -> None:
    card = _custom(CUSTOM, tmp_path)
    with Warehouse(scored_copy) as warehouse:
        enrich(warehouse, [ScorecardComponent({"scorecards": [card], "warehouse": warehouse})])
    sales, texts = _score(scored_copy, "call-20260915-0007", "compliance")
    assert _outcomes(sales)["no_guarantee_talk"] == "fail"
    assert _evidence(sales, "no_guarantee_talk", texts) == ["Guaranteed"]
    assert sales.auto_failed == ["no_guarantee_talk"] and sales.score == 0.0
    # Queue "Sales" is not billing: N/A, and the N/A criterion weighs nothing.
    assert _outcomes(sales)["billing_greeting"] == "na"
    billing, _ = _score(scored_copy, "call-20261117-0031", "compliance")
    assert _outcomes(billing) == {"no_guarantee_talk": "pass", "billing_greeting": "pass"}
    assert billing.score == 100.0
    with Warehouse(scored_copy, read_only=True) as warehouse:
        # The scorecard applies to calls only; the shipped scores stay current beside it.
        assert not conversation_scores(
            warehouse, warehouse.resolve_id("chat-20260903-0001"), scorecard="compliance"
        )
        assert conversation_scores(warehouse, billing.conversation_id, scorecard="support")


def test_rescoring_a_new_version_writes_beside_the_old_and_diff_names_moves(
    scored_copy: Path, tmp_path: Path
) -> None:
    text = (DATA / "support.yaml").read_text(encoding="utf-8")
    # Version 2 stops counting "I can see" as discussing the account.
    edited = text.replace('version: "1"', 'version: "2"').replace(
        "that order, on file, I can see]", "that order, on file]"
    )
    assert edited != text
    card = load_scorecard(_custom(edited, tmp_path))
    with Warehouse(scored_copy) as warehouse:
        old = versions_of(warehouse, "support")
        enrich(warehouse, [ScorecardComponent({"scorecards": [card], "warehouse": warehouse})])
        assert versions_of(warehouse, "support") == [*old, card.scorecard_version]
        both = warehouse.query(
            "SELECT count(DISTINCT value->>'scorecard_version') AS n FROM enrichments "
            "WHERE label = 'scorecard.total' AND value->>'scorecard' = 'support'"
        )[0]["n"]
        current = {r["scorecard_version"] for r in scores_table(warehouse, scorecard="support")}
        diff = diff_versions(warehouse, "support")
    assert both == 2 and current == {card.scorecard_version}
    assert diff.from_version == old[-1] and diff.to_version == card.scorecard_version
    moved = {(m.source_id, m.criterion, m.before, m.after) for m in diff.moved}
    # In call-20261110-0025 "I can see it" is the customer's shared screen, not the account:
    # version 2 no longer reads it as account talk (the hand score says N/A too).
    assert ("call-20261110-0025", "identity_before_account", "fail", "na") in moved
    assert ("lc-88101", "identity_before_account", "pass", "na") in moved
    assert {m.criterion for m in diff.moved} == {"identity_before_account"}
    assert diff.conversations >= 30
