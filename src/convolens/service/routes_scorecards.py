"""Quality scorecards over HTTP: scorecards, a conversation's scores with evidence, human
QA reviews, calibration, coaching and version diffs. Thin routes over
`convolens.scorecards`, the functions the CLI and the dashboard call.

Who sees what: admins and analysts everything; an agent key only its own conversations'
scores and its own coaching (another agent's conversation is a 404, as elsewhere); a
viewer key aggregates only (calibration figures and coaching means and pass rates, with
no conversation ids, evidence or example moments). QA reviews are for admins and
analysts.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from pydantic import BaseModel, Field

from convolens.client.models import Accepted
from convolens.scorecards import coaching as coaching_lib
from convolens.scorecards.calibration import Calibration, calibration
from convolens.scorecards.definition import ScorecardError, load_scorecards, parse_scorecard
from convolens.scorecards.diff import ScorecardDiff, diff_versions
from convolens.scorecards.store import ConversationScore, QaEntry, conversation_scores, record_qa
from convolens.service.auth import Principal, Role, require
from convolens.service.errors import ApiError, ErrorResponse
from convolens.service.jobs import Job
from convolens.service.params import Day
from convolens.service.results import find_conversation
from convolens.service.state import Caller, Db, get_service
from convolens.store.warehouse import Warehouse, WarehouseError

__all__ = ["router", "run_scoring_job"]

ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (401, 403, 404, 422)
}
router = APIRouter(prefix="/v1/scorecards", tags=["scorecards"], responses=ERRORS)
EVERYONE = (Role.admin, Role.analyst, Role.agent, Role.viewer)
ScorecardName = Annotated[str, Query(max_length=100, description="Scorecard name.")]


class ScorecardInfo(BaseModel):
    name: str
    version: str
    scorecard_version: str
    description: str
    pass_mark: float
    sections: list[dict[str, Any]]


class ValidateRequest(BaseModel):
    content: Annotated[str, Field(max_length=262_144)] | dict[str, Any] = Field(
        description="A scorecard: YAML text or an object."
    )


class ReviewRequest(BaseModel):
    scorecard: str = Field(max_length=100)
    outcomes: list[QaEntry] = Field(min_length=1, max_length=200)


def _info(card: Any) -> ScorecardInfo:
    return ScorecardInfo(
        name=card.name,
        version=card.version,
        scorecard_version=card.scorecard_version,
        description=card.description,
        pass_mark=card.pass_mark,
        sections=[s.model_dump(mode="json") for s in card.sections],
    )


@router.get("", response_model=list[ScorecardInfo])
def list_scorecards(caller: Caller) -> list[ScorecardInfo]:
    """The scorecards conversations are scored with (the shipped support and sales ones)."""
    require(caller, *EVERYONE)
    return [_info(card) for card in load_scorecards()]


class ScoreRequest(BaseModel):
    content: Annotated[str, Field(max_length=262_144)] | dict[str, Any] | None = Field(
        default=None, description="A scorecard (YAML text or object); default: the shipped ones."
    )


@router.post("/score", status_code=202, response_model=Accepted)
def score(
    request: Request, caller: Caller, db: Db, body: Annotated[ScoreRequest, Body()]
) -> Accepted:
    """Score the current conversations that this scorecard version has not scored, as a
    job; a new version's scores are written beside the old ones."""
    require(caller, Role.admin, Role.analyst)
    if body.content is not None:
        try:
            parse_scorecard(body.content)
        except ScorecardError as exc:
            raise ApiError(422, "invalid_scorecard", str(exc)) from None
    job_id = get_service(request).queue.submit(
        db, "scorecards", {"content": body.content}, created_by=caller.key_id
    )
    return Accepted(job_id=job_id, status_url=f"/v1/jobs/{job_id}")


def run_scoring_job(
    db: Warehouse, job: Job, request: dict[str, Any], progress: Any
) -> dict[str, Any]:
    from convolens.enrich.runner import enrich
    from convolens.scorecards.component import ScorecardComponent
    from convolens.scorecards.store import remember_scorecard

    progress("scoring", 0.0)
    content = request.get("content")
    cards = [parse_scorecard(content)] if content is not None else None
    component = ScorecardComponent({"scorecards": cards, "warehouse": db})
    for card in component.scorecards:
        remember_scorecard(db, card, job.created_by)
    report = enrich(db, [component])
    return {
        "scorecards": [c.scorecard_version for c in component.scorecards],
        "conversations": report.conversations,
        "labels": report.labels.get("scorecard", 0),
    }


@router.post("/validate", response_model=ScorecardInfo)
def validate(caller: Caller, body: Annotated[ValidateRequest, Body()]) -> ScorecardInfo:
    """Check a scorecard; a 422 names the line and field of each problem."""
    require(caller, Role.admin, Role.analyst)
    try:
        return _info(parse_scorecard(body.content))
    except ScorecardError as exc:
        raise ApiError(422, "invalid_scorecard", str(exc)) from None


@router.get("/conversations/{ref}", response_model=list[ConversationScore])
def conversation(caller: Caller, db: Db, ref: str) -> list[ConversationScore]:
    """A conversation's scores: per criterion the outcome (a QA reviewer's over the
    automatic one), the reason and the evidence with its words."""
    require(caller, Role.admin, Role.analyst, Role.agent)
    header = find_conversation(db, caller, ref)
    return conversation_scores(db, header["conversation_id"], quotes=True)


@router.post("/conversations/{ref}/review", response_model=ConversationScore)
def review(
    caller: Caller, db: Db, ref: str, body: Annotated[ReviewRequest, Body()]
) -> ConversationScore:
    """Record a QA reviewer's outcomes for criteria; they override the automatic ones."""
    require(caller, Role.admin, Role.analyst)
    header = find_conversation(db, caller, ref)
    try:
        return record_qa(db, header["conversation_id"], body.scorecard, body.outcomes, caller.name)
    except WarehouseError as exc:
        raise ApiError(422, "invalid_review", str(exc)) from None


@router.get("/calibration", response_model=Calibration)
def calibration_report(
    caller: Caller, db: Db, scorecard: ScorecardName | None = None
) -> Calibration:
    """Agreement between automatic and human outcomes per criterion (percent, Cohen's
    kappa) and the criteria flagged for disagreeing."""
    require(caller, Role.admin, Role.analyst, Role.viewer)
    result = calibration(db, scorecard=scorecard)
    if not caller.reads_text:
        for criterion in result.criteria:
            criterion.disagreements = []
    return result


def _agent_scope(caller: Principal, agent: str | None) -> str | None:
    if caller.role == Role.agent:
        if agent is not None and agent != caller.agent:
            raise ApiError(403, "forbidden", "an agent key sees its own coaching only")
        return caller.agent or ""
    return agent


@router.get("/coaching", response_model=coaching_lib.CoachingReport)
def coaching(
    caller: Caller,
    db: Db,
    scorecard: ScorecardName = "support",
    agent: Annotated[str | None, Query(max_length=200)] = None,
) -> coaching_lib.CoachingReport:
    """Per agent: mean score and trend, pass rates against the team and the top quartile,
    weakest criteria with example moments; and the coaching list."""
    require(caller, *EVERYONE)
    report = coaching_lib.coaching_report(db, scorecard, agent=_agent_scope(caller, agent))
    if caller.role == Role.agent:
        # The team's figures are context; the other agents' rows are not theirs to read.
        report.top_quartile_agents = []
        report.coaching_list = [i for i in report.coaching_list if i.agent == caller.agent]
    if not caller.reads_text:
        for item in report.coaching_list:
            item.examples = []
        for row in report.agents:
            for item in row.weakest:
                item.examples = []
    return report


@router.get("/coaching/impact", response_model=coaching_lib.CoachingImpact)
def coaching_impact(
    caller: Caller,
    db: Db,
    agent: Annotated[str, Query(max_length=200)],
    at: Annotated[Day, Query(description="The coaching date.")],
    scorecard: ScorecardName = "support",
    window_days: Annotated[int, Query(ge=1, le=3650)] = 28,
) -> coaching_lib.CoachingImpact:
    """The agent's scores in the window before the coaching date against the window after."""
    require(caller, Role.admin, Role.analyst, Role.agent)
    scoped = _agent_scope(caller, agent) or agent
    return coaching_lib.coaching_impact(db, scoped, at, scorecard, window_days)


@router.get("/{name}/diff", response_model=ScorecardDiff)
def diff(
    caller: Caller,
    db: Db,
    name: str,
    from_ref: Annotated[str, Query(alias="from", max_length=100)] = "previous",
    to_ref: Annotated[str, Query(alias="to", max_length=100)] = "latest",
) -> ScorecardDiff:
    """What a new scorecard version changed on the conversations both versions scored."""
    require(caller, Role.admin, Role.analyst)
    try:
        return diff_versions(db, name, from_ref, to_ref)
    except WarehouseError as exc:
        raise ApiError(404, "scorecard_version_not_found", str(exc)) from None
