"""The shapes of what drift checks and intake data health report: pydantic models with no
warehouse behind them, so the SDK reads them with httpx and pydantic alone."""

from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field, field_validator


class DriftSettings(BaseModel):
    recent_days: int = Field(default=7, ge=1, le=366)
    reference_days: int = Field(default=28, ge=1, le=3660)
    until: date | None = None
    components: list[str] | None = None
    psi_threshold: float = Field(default=0.2, gt=0)
    # Significance level of the chi-square and the centroid's permutation test.
    alpha: float = Field(default=0.01, gt=0, lt=1)
    confidence_threshold: float = Field(default=0.1, gt=0, le=1)
    centroid_threshold: float = Field(default=0.05, gt=0, le=2)
    min_labels: int = Field(default=20, ge=1)
    min_statements: int = Field(default=5, ge=2)
    top_categories: int = Field(default=15, ge=2, le=100)
    # Earlier windows for the chart, each `recent_days` further back.
    series_points: int = Field(default=8, ge=0, le=104)
    embeddings: bool = False

    @field_validator("until")
    @classmethod
    def _until_in_range(cls, value: date | None) -> date | None:
        # Windows and the series reach back up to ~115 years: keep date arithmetic in range.
        if value is not None and not date(1900, 1, 1) <= value <= date(2999, 12, 31):
            raise ValueError("until must be a day between 1900-01-01 and 2999-12-31")
        return value


class CategoryShare(BaseModel):
    category: str
    recent: float
    reference: float


class ComponentDrift(BaseModel):
    component: str
    recent_n: int
    reference_n: int
    psi: float | None = None
    chi2: float | None = None
    chi2_p: float | None = None
    recent_confidence: float | None = None
    reference_confidence: float | None = None
    confidence_shift: float | None = None
    drifted: bool = False
    reasons: list[str] = Field(default_factory=list)
    distribution: list[CategoryShare] = Field(default_factory=list)


class CentroidShift(BaseModel):
    recent_n: int
    reference_n: int
    cosine_distance: float | None = None
    # The same distance between random splits of the pooled statements (same sizes): what
    # chance alone gives with this few, this varied statements; p = share at or above.
    chance_distance: float | None = None
    p_value: float | None = None
    threshold: float
    drifted: bool = False
    model_id: str | None = None


class DriftPoint(BaseModel):
    component: str
    until: date
    psi: float | None = None
    recent_n: int
    reference_n: int


class DriftReport(BaseModel):
    until: date | None
    recent_start: date | None
    reference_start: date | None
    settings: DriftSettings
    components: list[ComponentDrift]
    centroid: CentroidShift | None = None
    series: list[DriftPoint] = Field(default_factory=list)
    check_id: str | None = None
    alerts: int = 0

    @property
    def drifted(self) -> list[ComponentDrift]:
        return [c for c in self.components if c.drifted]


class HealthFinding(BaseModel):
    finding_id: str
    run_id: str
    source: str
    check_name: str
    field: str | None = None
    observed: float | None = None
    expected: float | None = None
    score: float | None = None
    message: str
    created_at: datetime | None = None


class ExpectedField(BaseModel):
    field: str
    presence: float  # share of recent records holding the field
    fill_rate: float  # share of recent records where it has a value
    type: str | None = None  # the usual JSON type (None for canonical fields)
    canonical: bool = False


class RunVolume(BaseModel):
    run_id: str
    created_at: datetime
    records: int
    duplicates: int
    findings: int


class SourceHealth(BaseModel):
    source: str
    runs: int
    records: int
    last_run_at: datetime | None = None
    expected: list[ExpectedField]
    languages: dict[str, int]
    volumes: list[RunVolume]
