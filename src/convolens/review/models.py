"""The shapes the review queue, its figures and the taxonomy gate exchange: pydantic models
with no warehouse behind them, so the SDK reads them with httpx and pydantic alone."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

Status = Literal["draft", "validated", "active", "retired"]
Stratum = Literal["random", "low_confidence", "disagreement"]
Verdict = Literal["accept", "correct", "skip"]
# A sample of thousands is a project, not a queue; and one value name is a short word.
MAX_PER_STRATUM = 1000
MAX_VALUE_CHARS = 100


class Candidate(BaseModel):
    item_id: str
    utterance_id: str
    text: str
    intent: str = Field(description="The intent reviewers say it is (or also is).")
    model_value: str
    taxonomy_version: str | None
    reviewer: str | None


class TaxonomyVersion(BaseModel):
    name: str
    version: int
    taxonomy_version: str
    status: Status
    active: bool
    created_by: str | None
    created_at: str
    approved_by: str | None = None
    approved_at: str | None = None
    validation: dict[str, Any] | None = None


class Proposal(BaseModel):
    version: TaxonomyVersion
    based_on: str = Field(description="The taxonomy the draft extends.")
    added: dict[str, int] = Field(description="Examples added per intent.")
    candidates: int


class IntentFigure(BaseModel):
    intent: str
    reviewed: int
    active_accuracy: float | None
    draft_accuracy: float | None


class ValidationReport(BaseModel):
    version: int
    taxonomy_version: str
    based_on: str
    reviewed: int
    folds: int
    active_accuracy: float
    draft_accuracy: float
    intents: list[IntentFigure]


class ValueQuality(BaseModel):
    component: str
    label: str
    taxonomy_version: str | None
    value: str
    reviewed: int = Field(description="Random-stratum items with a verdict.")
    correct: int
    precision: float | None
    precision_low: float | None
    precision_high: float | None
    recall: float | None = None
    recall_low: float | None = None
    recall_high: float | None = None
    missed: int = Field(
        0, description="Items where reviewers said this value applies and the model did not."
    )
    flagged: bool = False


class Agreement(BaseModel):
    component: str
    label: str
    taxonomy_version: str | None
    reviewed: int
    precision: float | None = Field(description="Over all values, each weighted by its population.")
    precision_low: float | None
    precision_high: float | None
    model_human_kappa: float | None
    human_pairs: int
    human_agreement: float | None
    human_human_kappa: float | None
    human_human_alpha: float | None


class WeekQuality(BaseModel):
    component: str
    label: str
    taxonomy_version: str | None
    value: str
    week: str
    reviewed: int
    precision: float | None
    precision_low: float | None
    precision_high: float | None


class QualityReport(BaseModel):
    bar: float
    min_reviews: int
    items: int
    reviews: int
    values: list[ValueQuality]
    agreement: list[Agreement]
    weeks: list[WeekQuality]
    flagged: list[str] = Field(description="'label=value' of each flagged value.")


class SampleSpec(BaseModel):
    component: str | None = Field(default=None, max_length=100, description="Default: all.")
    label: str | None = Field(default=None, max_length=100, description="Default: all.")
    value: str | None = Field(default=None, max_length=MAX_VALUE_CHARS)
    per_value: int = Field(default=20, ge=0, le=MAX_PER_STRATUM, description="Random items.")
    low_confidence: int = Field(default=5, ge=0, le=MAX_PER_STRATUM)
    disagreement: int = Field(default=5, ge=0, le=MAX_PER_STRATUM)
    disagreement_margin: float = Field(default=0.15, ge=0, le=1)
    second_share: float = Field(
        default=0.2, ge=0, le=1, description="Share of items a second reviewer checks."
    )
    seed: int | None = Field(default=None, ge=0, le=2**32 - 1)


class BatchSummary(BaseModel):
    batch_id: str
    items: int
    second_reviews: int
    # "component/label/value" -> {stratum: items}
    strata: dict[str, dict[str, int]]


class EvidenceView(BaseModel):
    utterance_id: str
    seq: int
    role: str | None = None
    # The utterance's text cut at the evidence spans: (text, marked) pieces in order.
    pieces: list[tuple[str, bool]]


class ReviewItem(BaseModel):
    item_id: str
    batch_id: str
    conversation_id: str
    utterance_id: str | None
    component: str
    label: str
    value: str
    taxonomy_version: str | None
    confidence: float | None
    stratum: Stratum
    weight: float
    reviews_wanted: int
    reviews_done: int
    choices: list[str] = Field(default_factory=list)
    evidence: list[EvidenceView] = Field(default_factory=list)


class ReviewInput(BaseModel):
    verdict: Verdict
    corrected_value: str | None = Field(default=None, min_length=1, max_length=MAX_VALUE_CHARS)
    missed_values: list[str] = Field(default_factory=list, max_length=20)
    note: str | None = Field(default=None, max_length=2000)

    @model_validator(mode="after")
    def _consistent(self) -> ReviewInput:
        if self.verdict == "correct" and not (self.corrected_value or self.missed_values):
            raise ValueError("a correction names the right value or a missed one")
        if self.verdict != "correct" and (self.corrected_value or self.missed_values):
            raise ValueError("only a 'correct' verdict carries values")
        if any(not v or len(v) > MAX_VALUE_CHARS for v in self.missed_values):
            raise ValueError(f"missed values are 1 to {MAX_VALUE_CHARS} characters")
        return self


class Review(BaseModel):
    review_id: str
    item_id: str
    reviewer: str
    reviewer_name: str | None
    verdict: Verdict
    corrected_value: str | None
    missed_values: list[str]
    note: str | None
    created_at: str


class QueueStatus(BaseModel):
    batch_id: str
    created_at: str
    items: int
    reviewed: int
    waiting: int
