"""The SDK's label-review calls (/v1/review: the queue, verdicts, quality figures, taxonomy
versions), shared by `Client` and `AsyncClient`."""

from __future__ import annotations

from typing import Any

from convolens.client.calls import _Call, _model
from convolens.client.models import Accepted
from convolens.review.models import (
    BatchSummary,
    Candidate,
    Proposal,
    QualityReport,
    QueueStatus,
    Review,
    ReviewItem,
    TaxonomyVersion,
)

__all__ = [
    "activate_taxonomy_call",
    "propose_taxonomy_call",
    "quality_call",
    "review_batches_call",
    "review_call",
    "review_candidates_call",
    "review_item_call",
    "review_next_call",
    "sample_call",
    "taxonomy_versions_call",
    "validate_taxonomy_call",
]


def sample_call(**spec: Any) -> _Call[BatchSummary]:
    """`spec`: component, label, value, per_value, low_confidence, disagreement,
    disagreement_margin, second_share, seed (see `convolens.review.queue.SampleSpec`)."""
    return _Call("POST", "/v1/review/batches", _model(BatchSummary), json=spec)


def review_batches_call() -> _Call[list[QueueStatus]]:
    return _Call("GET", "/v1/review/batches", _model(list[QueueStatus]))


def _next(body: Any) -> ReviewItem | None:
    item = body.get("item") if isinstance(body, dict) else None
    return ReviewItem.model_validate(item) if item is not None else None


def review_next_call(batch_id: str | None = None) -> _Call[ReviewItem | None]:
    return _Call("GET", "/v1/review/next", _next, params={"batch_id": batch_id})


def review_item_call(item_id: str) -> _Call[ReviewItem]:
    return _Call("GET", f"/v1/review/items/{item_id}", _model(ReviewItem))


def review_call(
    item_id: str,
    verdict: str,
    corrected_value: str | None = None,
    missed_values: list[str] | None = None,
    note: str | None = None,
) -> _Call[Review]:
    body = {
        "verdict": verdict,
        "corrected_value": corrected_value,
        "missed_values": missed_values or [],
        "note": note,
    }
    return _Call("POST", f"/v1/review/items/{item_id}", _model(Review), json=body)


def quality_call(**params: Any) -> _Call[QualityReport]:
    """`params`: component, label, bar, min_reviews."""
    return _Call("GET", "/v1/review/quality", _model(QualityReport), params=params)


def review_candidates_call() -> _Call[list[Candidate]]:
    return _Call("GET", "/v1/review/candidates", _model(list[Candidate]))


def taxonomy_versions_call() -> _Call[list[TaxonomyVersion]]:
    return _Call("GET", "/v1/review/taxonomies", _model(list[TaxonomyVersion]))


def propose_taxonomy_call() -> _Call[Proposal]:
    return _Call("POST", "/v1/review/taxonomies/propose", _model(Proposal))


def validate_taxonomy_call(version: int, folds: int | None = None) -> _Call[Accepted]:
    """A job: its result is the `ValidationReport` (see `Client.wait`)."""
    path = f"/v1/review/taxonomies/{version}/validate"
    return _Call("POST", path, _model(Accepted), params={"folds": folds})


def activate_taxonomy_call(version: int, accept: bool) -> _Call[TaxonomyVersion]:
    return _Call(
        "POST",
        f"/v1/review/taxonomies/{version}/activate",
        _model(TaxonomyVersion),
        json={"accept": accept},
    )


class ReviewMethods:
    """`Client`'s review methods (mixed in: sdk.py stays about the core calls)."""

    def _do(self, call: _Call[Any]) -> Any:  # provided by Client
        raise NotImplementedError

    def review_sample(self, **spec: Any) -> BatchSummary:
        """Sample labels to review (POST /v1/review/batches); `spec` as `sample_call`."""
        result: BatchSummary = self._do(sample_call(**spec))
        return result

    def review_batches(self) -> list[QueueStatus]:
        result: list[QueueStatus] = self._do(review_batches_call())
        return result

    def review_next(self, batch_id: str | None = None) -> ReviewItem | None:
        """The next item waiting for this key, or None."""
        result: ReviewItem | None = self._do(review_next_call(batch_id))
        return result

    def review_item(self, item_id: str) -> ReviewItem:
        result: ReviewItem = self._do(review_item_call(item_id))
        return result

    def review(
        self,
        item_id: str,
        verdict: str,
        corrected_value: str | None = None,
        missed_values: list[str] | None = None,
        note: str | None = None,
    ) -> Review:
        """Accept, correct (`corrected_value` and/or `missed_values`) or skip an item."""
        result: Review = self._do(
            review_call(item_id, verdict, corrected_value, missed_values, note)
        )
        return result

    def quality(self, **params: Any) -> QualityReport:
        """Label quality figures; `params`: component, label, bar, min_reviews."""
        result: QualityReport = self._do(quality_call(**params))
        return result

    def review_candidates(self) -> list[Candidate]:
        result: list[Candidate] = self._do(review_candidates_call())
        return result

    def taxonomy_versions(self) -> list[TaxonomyVersion]:
        result: list[TaxonomyVersion] = self._do(taxonomy_versions_call())
        return result

    def propose_taxonomy(self) -> Proposal:
        result: Proposal = self._do(propose_taxonomy_call())
        return result

    def validate_taxonomy(self, version: int, folds: int | None = None) -> Accepted:
        """Start the cross-validation of a draft: a job whose result is the figures (the
        `ValidationReport` fields); wait for it with `wait`."""
        result: Accepted = self._do(validate_taxonomy_call(version, folds))
        return result

    def activate_taxonomy(self, version: int, *, accept: bool) -> TaxonomyVersion:
        result: TaxonomyVersion = self._do(activate_taxonomy_call(version, accept))
        return result


class AsyncReviewMethods:
    """`AsyncClient`'s review methods, awaited."""

    async def _do(self, call: _Call[Any]) -> Any:  # provided by AsyncClient
        raise NotImplementedError

    async def review_sample(self, **spec: Any) -> BatchSummary:
        result: BatchSummary = await self._do(sample_call(**spec))
        return result

    async def review_batches(self) -> list[QueueStatus]:
        result: list[QueueStatus] = await self._do(review_batches_call())
        return result

    async def review_next(self, batch_id: str | None = None) -> ReviewItem | None:
        result: ReviewItem | None = await self._do(review_next_call(batch_id))
        return result

    async def review_item(self, item_id: str) -> ReviewItem:
        result: ReviewItem = await self._do(review_item_call(item_id))
        return result

    async def review(
        self,
        item_id: str,
        verdict: str,
        corrected_value: str | None = None,
        missed_values: list[str] | None = None,
        note: str | None = None,
    ) -> Review:
        result: Review = await self._do(
            review_call(item_id, verdict, corrected_value, missed_values, note)
        )
        return result

    async def quality(self, **params: Any) -> QualityReport:
        result: QualityReport = await self._do(quality_call(**params))
        return result

    async def review_candidates(self) -> list[Candidate]:
        result: list[Candidate] = await self._do(review_candidates_call())
        return result

    async def taxonomy_versions(self) -> list[TaxonomyVersion]:
        result: list[TaxonomyVersion] = await self._do(taxonomy_versions_call())
        return result

    async def propose_taxonomy(self) -> Proposal:
        result: Proposal = await self._do(propose_taxonomy_call())
        return result

    async def validate_taxonomy(self, version: int, folds: int | None = None) -> Accepted:
        result: Accepted = await self._do(validate_taxonomy_call(version, folds))
        return result

    async def activate_taxonomy(self, version: int, *, accept: bool) -> TaxonomyVersion:
        result: TaxonomyVersion = await self._do(activate_taxonomy_call(version, accept))
        return result
