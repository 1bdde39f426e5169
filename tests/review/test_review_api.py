"""Label review over a real `convolens serve` on a labelled copy of the sample corpus,
through the SDK: roles, the queue, verdicts, quality figures, the taxonomy gate."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "service"))
from live_server import Server, role_keys, wait_job

from convolens.client import ApiError, Client


@pytest.fixture(scope="module")
def served(labelled_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    import shutil

    db = tmp_path_factory.mktemp("review_api") / "corpus.duckdb"
    shutil.copy(labelled_db, db)
    server = Server(db, db.with_name("server.log"), CONVOLENS_PRELOAD="0").start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def keys(served: Server) -> dict[str, str]:
    return role_keys(served, name="review")


def _client(server: Server, key: str) -> Client:
    return Client(server.url, api_key=key)


def test_review_over_the_api(served: Server, keys: dict[str, str]) -> None:
    with _client(served, keys["analyst"]) as analyst, _client(served, keys["admin"]) as admin:
        batch = analyst.review_sample(
            component="intents", label="intent.utterance", per_value=1, low_confidence=0,
            disagreement=0, second_share=1.0, seed=3,
        )  # fmt: skip
        assert batch.items > 5 and batch.second_reviews == batch.items
        assert [b.batch_id for b in analyst.review_batches()] == [batch.batch_id]
        corrected, seen = 0, []
        while (item := analyst.review_next(batch.batch_id)) is not None:
            seen.append(item.item_id)
            assert item.evidence and item.reviews_done == 0
            if item.value != "how_to" and corrected < 3:
                analyst.review(item.item_id, "correct", corrected_value="how_to")
                corrected += 1
            else:
                analyst.review(item.item_id, "accept")
        with pytest.raises(ApiError) as again:
            analyst.review(seen[0], "accept")
        assert again.value.status == 409 and again.value.code == "already_reviewed"
        # The admin is a second reviewer: offered every item the analyst did, and agrees.
        first = admin.review_next()
        assert first is not None and first.reviews_done == 1
        with pytest.raises(ApiError) as bad:
            admin.review(first.item_id, "correct", corrected_value="not_an_intent")
        assert bad.value.status == 422 and "unknown value" in bad.value.message
        while (item := admin.review_next()) is not None:
            # Agreeing with the analyst: keep the corrections, accept the rest.
            done = [c for c in admin.review_candidates() if c.item_id == item.item_id]
            if done:
                admin.review(item.item_id, "correct", corrected_value=done[0].intent)
            else:
                admin.review(item.item_id, "accept")
        assert len(admin.review_candidates()) == corrected

    with _client(served, keys["viewer"]) as viewer:
        report = viewer.quality(component="intents", min_reviews=1, bar=0.99)
        with pytest.raises(ApiError) as denied:
            viewer.review_next()
        assert denied.value.status == 403
    [agreement] = report.agreement
    assert agreement.human_pairs == batch.items and agreement.human_agreement == 1.0
    assert agreement.human_human_kappa == 1.0 and agreement.human_human_alpha == 1.0
    assert report.flagged and all(f.startswith("intent.utterance=") for f in report.flagged)
    with _client(served, keys["agent"]) as agent, pytest.raises(ApiError) as refused:
        agent.quality()
    assert refused.value.status == 403

    with _client(served, keys["admin"]) as admin, _client(served, keys["analyst"]) as analyst:
        with pytest.raises(ApiError) as analyst_refused:
            analyst.propose_taxonomy()
        assert analyst_refused.value.status == 403
        proposal = admin.propose_taxonomy()
        assert proposal.version.status == "draft" and proposal.added == {"how_to": corrected}
        number = proposal.version.version
        with pytest.raises(ApiError) as early:
            admin.activate_taxonomy(number, accept=True)
        assert early.value.status == 422 and "validate it first" in early.value.message
        figures = admin.wait(admin.validate_taxonomy(number, folds=2), timeout=600).result or {}
        assert figures["reviewed"] == batch.items and figures["folds"] == 2
        assert 0 <= figures["draft_accuracy"] <= 1 and figures["intents"]
        with pytest.raises(ApiError) as unaccepted:
            admin.activate_taxonomy(number, accept=False)
        assert "--accept" in unaccepted.value.message or "accept" in unaccepted.value.message
        active = admin.activate_taxonomy(number, accept=True)
        assert active.status == "active" and active.approved_by
        assert active.validation is not None
        with served.client() as http:
            relabel = wait_job(http, active.validation["relabel_job_id"])
        assert relabel["status"] == "completed", relabel
        assert relabel["result"]["taxonomy_version"] == active.taxonomy_version
        [stored] = [v for v in admin.taxonomy_versions() if v.version == number]
        assert stored.status == "active" and stored.validation is not None
        assert stored.validation["figures"]["reviewed"] == batch.items
