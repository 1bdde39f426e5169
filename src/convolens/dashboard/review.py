"""The dashboard's label-review pages: the queue (one item a screen, driven by the keys
a / c / s) and "Label quality" (precision, recall and agreement from the reviews).

Reviewers are admin and analyst keys, as over the API; viewers read the quality page
(figures only, no text). Every verdict is a CSRF-checked form post (the route class of
routes.py checks the token before the handler runs) that calls `record_review`, the one
write path. The item screen hides the stratum and the model's confidence: a reviewer who
knew an item was picked as doubtful would judge it differently.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse

from convolens.dashboard import charts
from convolens.dashboard.label_flags import FLAG, flag_note
from convolens.dashboard.routes import PREFIX, Who, _PageRoute, render
from convolens.dashboard.session import require_page
from convolens.review.figures import QualityReport, quality_report
from convolens.review.queue import (
    ReviewError,
    ReviewInput,
    SampleSpec,
    create_batch,
    next_item,
    queue_status,
    record_review,
)
from convolens.service.errors import ApiError
from convolens.service.state import Db

__all__ = ["router"]

HERE = Path(__file__).resolve().parent
router = APIRouter(prefix=PREFIX, route_class=_PageRoute, include_in_schema=False)
SAMPLE_FIELDS = (
    "component", "label", "per_value", "low_confidence", "disagreement", "second_share"
)  # fmt: skip


@router.get("/review", response_class=HTMLResponse)
def review_page(
    request: Request,
    db: Db,
    who: Who,
    batch: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    require_page(who, "review")
    item = next_item(db, who.key_id, batch)
    return render(
        "review.html", request, who, active="review",
        item=item, batches=queue_status(db)[:10], batch=batch,
    )  # fmt: skip


@router.post("/review/sample", response_model=None)
async def review_sample(request: Request, db: Db, who: Who) -> Response:
    require_page(who, "review")
    form = {k: v for k, v in (await request.form()).items() if isinstance(v, str) and v}
    try:
        spec = SampleSpec.model_validate({k: form[k] for k in SAMPLE_FIELDS if k in form})
    except ValueError as exc:
        raise ApiError(422, "invalid_sample", str(exc).splitlines()[0]) from None
    create_batch(db, spec, created_by=who.key_id)
    return RedirectResponse(f"{PREFIX}/review", status_code=303)


@router.post("/review/{item_id}", response_model=None)
async def review_verdict(request: Request, db: Db, who: Who, item_id: str) -> Response:
    # The CSRF token was checked by _PageRoute before this runs (a state-changing form).
    require_page(who, "review")
    form = await request.form()
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    missed = [v for v in form.getlist("missed_values") if isinstance(v, str) and v]
    try:
        verdict = ReviewInput.model_validate(
            {
                "verdict": fields.get("verdict", ""),
                "corrected_value": fields.get("corrected_value") or None,
                "missed_values": missed,
                "note": fields.get("note") or None,
            }
        )
        record_review(db, item_id, who.key_id, verdict, reviewer_name=who.name)
    except ReviewError as exc:
        raise ApiError(exc.status, "invalid_review", str(exc)) from None
    except ValueError as exc:
        message = str(exc).splitlines()[-1] if str(exc) else "invalid review"
        raise ApiError(422, "invalid_review", message) from None
    batch = fields.get("batch")
    target = f"{PREFIX}/review" + (f"?batch={batch}" if batch else "")
    return RedirectResponse(target, status_code=303)


@router.get("/review/keys.js", response_model=None)
def review_keys() -> Response:
    return FileResponse(
        HERE / "static" / "review.js",
        media_type="text/javascript",
        headers={"Cache-Control": "public, max-age=3600"},
    )


def _week_chart(report: QualityReport) -> Any:
    """Precision per week for each reviewed value, one line each."""
    import plotly.graph_objects as go

    fig = go.Figure()
    series: dict[str, list[tuple[str, float]]] = {}
    for w in report.weeks:
        if w.precision is not None:
            series.setdefault(f"{w.label}={w.value}", []).append((w.week, w.precision))
    if not series:
        return None
    for name, points in sorted(series.items()):
        fig.add_scatter(x=[p[0] for p in points], y=[p[1] for p in points], name=name,
                        mode="lines+markers")  # fmt: skip
    return charts._layout(fig, height=320)


@router.get("/quality", response_class=HTMLResponse)
def quality_page(
    request: Request,
    db: Db,
    who: Who,
    component: Annotated[str | None, Query(max_length=100)] = None,
) -> HTMLResponse:
    require_page(who, "quality")
    report = quality_report(db, component=component or None)
    figures = {"weeks": _week_chart(report)} if report.weeks else {}
    return render(
        "quality.html", request, who, active="quality",
        report=report, component=component, figures=figures, flag=FLAG, flag_note=flag_note,
    )  # fmt: skip
