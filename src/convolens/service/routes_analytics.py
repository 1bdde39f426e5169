"""Across conversations over HTTP: clusters, trends, spikes, before/after, agents, accounts.

Thin routes over `convolens.analytics`, the functions the CLI and the dashboard call.
They are aggregates, so viewers may read them, shaped by `analytics.viewer_view`: values
taken from conversation text (keyphrase topics, cluster labels) become opaque names, and
evidence conversation ids, cluster statements and phrases are left out. Agent keys may
not read them, as on the dashboard, because they would see the whole team's
conversations through them. Bad parameters (an unknown dimension, a signal with no
accounts imported) are 422s with the library's message.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Annotated, Any, Literal, TypeVar

from fastapi import APIRouter, Query, Request

from convolens.analytics import (
    agents,
    before_after,
    business_marts,
    cluster_store,
    spikes,
    trends,
    viewer_view,
)
from convolens.analytics.annotations import get_annotation
from convolens.analytics.business_import import BusinessDataError
from convolens.client.models import Accepted
from convolens.service.auth import Principal, Role, require
from convolens.service.errors import ApiError, ErrorResponse
from convolens.service.jobs import Job
from convolens.service.params import EARLIEST, LATEST, Day
from convolens.service.state import Caller, Db, get_service
from convolens.store.reader import ConversationFilter
from convolens.store.warehouse import Warehouse

__all__ = ["router", "run_clusters_job"]

T = TypeVar("T")
ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 422)
}
router = APIRouter(prefix="/v1/analytics", tags=["analytics"], responses=ERRORS)
READERS = (Role.admin, Role.analyst, Role.viewer)

Since = Annotated[Day | None, Query(description="Conversations started on or after.")]
Until = Annotated[Day | None, Query(description="Conversations started on or before.")]
Channel = Annotated[str | None, Query(description="Only this channel.")]
QueueName = Annotated[str | None, Query(description="Only this queue.")]


def _filters(
    since: date | None, until: date | None, channel: str | None, queue: str | None = None
) -> ConversationFilter:
    return ConversationFilter(
        channel=channel,
        queue=queue,
        since=datetime.combine(since, datetime.min.time()) if since else None,
        until=datetime.combine(until, datetime.max.time()) if until else None,
    )


def _run(caller: Principal, call: Callable[[], T]) -> T:
    require(caller, *READERS)
    try:
        return call()
    except BusinessDataError as exc:
        raise ApiError(422, "no_business_data", str(exc)) from None
    except (ValueError, LookupError) as exc:
        raise ApiError(422, "invalid_analytics_request", str(exc)) from None


def _opaque(caller: Principal, db: Warehouse) -> viewer_view.OpaqueNames | None:
    """The names a key that may not read conversation text sees (None: it may)."""
    return None if caller.reads_text else viewer_view.OpaqueNames(db)


@router.get("/trends", response_model=trends.VolumeTable)
def get_trends(
    db: Db,
    caller: Caller,
    dimension: str = "intent",
    grain: Literal["day", "week"] = "week",
    since: Since = None,
    until: Until = None,
    channel: Channel = None,
    queue: QueueName = None,
    top: Annotated[int | None, Query(ge=1, le=500)] = 10,
) -> trends.VolumeTable:
    """Conversations, share and mean customer sentiment per period and value of `dimension`
    (intent, topic, cluster, tracker, signal, channel, queue, agent), with annotations.
    Viewers get topics and clusters by name ("topic 3"), not by their words."""
    names = _opaque(caller, db)

    def table() -> trends.VolumeTable:
        found = trends.volume(
            db, dimension, grain, since, until, _filters(None, None, channel, queue), top
        )
        return found if names is None else viewer_view.volume_table(found, names)

    return _run(caller, table)


@router.get("/spikes", response_model=spikes.SpikeReport | None)
def get_spikes(
    db: Db,
    caller: Caller,
    dimension: str = "intent",
    grain: Literal["day", "week"] = "week",
    baseline: Annotated[int, Query(ge=1, le=52)] = 4,
    min_count: Annotated[int, Query(ge=1, le=1_000_000_000)] = 5,
    as_of: Annotated[Day | None, Query(description="A day in the period to examine.")] = None,
    all_values: Annotated[bool, Query(description="Every value, not only spikes.")] = False,
) -> spikes.SpikeReport | None:
    """What rose or fell in the latest period (or `as_of`'s) against the previous
    `baseline` periods, with the evidence conversations (not for viewers). null: no
    dated conversations."""
    names = _opaque(caller, db)

    def report() -> spikes.SpikeReport | None:
        found = spikes.spikes(
            db, dimension, grain, baseline, min_count, as_of, significant_only=not all_values
        )
        return found if names is None else viewer_view.spike_report(found, names)

    return _run(caller, report)


@router.get("/before-after", response_model=before_after.BeforeAfter)
def get_before_after(
    db: Db,
    caller: Caller,
    at: Annotated[str, Query(description="An ISO date, or an annotation id.")],
    dimension: str | None = None,
    value: str | None = None,
    window_days: Annotated[int, Query(ge=1, le=365)] = 14,
) -> before_after.BeforeAfter:
    """Did conversations about `value` change after `at`? Rates, share, sentiment, tests.
    Viewers name a topic or cluster as the trends show it to them ("topic 3")."""
    when: date | int
    try:
        # An annotation id is an INTEGER in the warehouse: a longer number names none.
        when = int(at) if at.isdigit() and len(at) <= 9 else date.fromisoformat(at)
        if isinstance(when, date) and not EARLIEST <= when <= LATEST:
            raise ValueError(at)
    except ValueError:
        message = f"at must be an ISO date or an annotation id, not {at!r}"
        raise ApiError(422, "invalid_date", message) from None
    names = _opaque(caller, db)

    def compare() -> before_after.BeforeAfter:
        if names is None:
            return before_after.before_after(db, dimension, value, when, window_days)
        watched = dimension
        if watched is None and isinstance(when, int):  # the annotation's dimension
            note = get_annotation(db, when)
            watched = note.dimension.value if note.dimension else None
        asked = names.value(watched, value) if value is not None else None
        found = before_after.before_after(db, dimension, asked, when, window_days)
        return viewer_view.before_after(found, names)

    return _run(caller, compare)


@router.get("/agents", response_model=agents.TeamComparison)
def get_agents(
    db: Db,
    caller: Caller,
    since: Since = None,
    until: Until = None,
    channel: Channel = None,
    queue: QueueName = None,
    kind: Literal["human", "ai"] | None = None,
    min_conversations: Annotated[int, Query(ge=1, le=1_000_000_000)] = 1,
) -> agents.TeamComparison:
    """A scorecard per agent, with the team mean, the top quartile, ranks and percentiles."""
    return _run(
        caller,
        lambda: agents.agent_scorecards(
            db, _filters(since, until, channel, queue), kind=kind,
            min_conversations=min_conversations,
        ),
    )  # fmt: skip


@router.get("/human-vs-ai", response_model=agents.HumanVsAi)
def get_human_vs_ai(
    db: Db, caller: Caller, since: Since = None, until: Until = None, channel: Channel = None
) -> agents.HumanVsAi:
    """Human agents and bots on the same measures; outcomes by who handled the conversation."""
    return _run(caller, lambda: agents.human_vs_ai(db, _filters(since, until, channel)))


@router.get("/lift", response_model=business_marts.LiftResult)
def get_lift(
    db: Db,
    caller: Caller,
    signal: str = "competitor_evaluation",
    dimension: str = "signal",
    outcome: Literal["churn", "order"] = "churn",
    window_days: Annotated[int, Query(ge=1, le=3650)] = 90,
) -> business_marts.LiftResult:
    """Outcome rate of accounts with a signal (or intent, tracker, topic) vs without and vs
    all, with 95 % intervals. Needs imported accounts (`convolens import accounts`).
    Viewers name a topic as the trends show it to them, and get no per-account list."""
    names = _opaque(caller, db)

    def compute() -> business_marts.LiftResult:
        asked = signal if names is None else names.value(dimension, signal)
        found = business_marts.signal_outcome_lift(
            db, asked, outcome, window_days, dimension=dimension
        )
        return found if names is None else viewer_view.lift(found, names)

    return _run(caller, compute)


@router.get("/issues", response_model=list[business_marts.IssueValue])
def get_issues(
    db: Db, caller: Caller, dimension: str = "intent", since: Since = None, until: Until = None
) -> list[business_marts.IssueValue]:
    """Issues weighted by customer value: accounts and ARR touched, ARR churned."""
    names = _opaque(caller, db)

    def compute() -> list[business_marts.IssueValue]:
        rows = business_marts.issues_by_value(db, dimension, filters=_filters(since, until, None))
        return rows if names is None else viewer_view.issue_rows(rows, dimension, names)

    return _run(caller, compute)


@router.get("/friction", response_model=list[business_marts.FrictionRow])
def get_friction(
    db: Db,
    caller: Caller,
    dimension: str = "intent",
    repeat_days: Annotated[int, Query(ge=1, le=365)] = 7,
) -> list[business_marts.FrictionRow]:
    """Effort per issue: exchanges, escalation rate, handle time, repeat contacts."""
    names = _opaque(caller, db)

    def compute() -> list[business_marts.FrictionRow]:
        rows = business_marts.friction_by_topic(db, dimension, repeat_days=repeat_days)
        return rows if names is None else viewer_view.issue_rows(rows, dimension, names)

    return _run(caller, compute)


@router.get("/campaigns", response_model=business_marts.CampaignView)
def get_campaigns(db: Db, caller: Caller) -> business_marts.CampaignView:
    """Per campaign: conversations, and the share confused or negative vs all."""
    return _run(caller, lambda: business_marts.campaign_view(db))


@router.get("/clusters", response_model=list[cluster_store.ClusterSummary])
def get_clusters(
    db: Db, caller: Caller, examples: Annotated[int, Query(ge=0, le=20)] = 3
) -> list[cluster_store.ClusterSummary]:
    """Customer problems grouped by meaning (the latest clustering run). Viewers get each
    cluster's id and size: its label, phrases and statements are conversation text."""
    found = _run(caller, lambda: cluster_store.list_clusters(db, examples=examples))
    return found if caller.reads_text else viewer_view.clusters(found)


@router.get("/clusters/{cluster_id}/members", response_model=list[cluster_store.ClusterMember])
def get_cluster_members(
    cluster_id: str, db: Db, caller: Caller
) -> list[cluster_store.ClusterMember]:
    """The conversations of a cluster with their problem statements (text: not viewers)."""
    require(caller, Role.admin, Role.analyst)
    members = cluster_store.cluster_members(db, cluster_id)
    if not members:
        raise ApiError(404, "cluster_not_found", f"no cluster {cluster_id!r} in the latest run")
    return members


@router.post("/clusters/refresh", status_code=202, response_model=Accepted)
def refresh_clusters(
    request: Request,
    db: Db,
    caller: Caller,
    refit: Annotated[bool, Query(description="Cluster everything again.")] = False,
) -> Accepted:
    """Cluster the problem statements (first time or `refit`), else place conversations
    that arrived since in the existing clusters; runs as a job."""
    require(caller, Role.admin, Role.analyst)
    job_id = get_service(request).queue.submit(
        db, "clusters", {"refit": refit}, created_by=caller.key_id
    )
    return Accepted(job_id=job_id, status_url=f"/v1/jobs/{job_id}")


def run_clusters_job(
    db: Warehouse, job: Job, request: dict[str, Any], progress: Any
) -> dict[str, Any]:
    progress("clustering", 0.0)
    run = cluster_store.refresh_clusters(db, refit=bool(request.get("refit")))
    return run.model_dump(mode="json", exclude={"clusters"})
