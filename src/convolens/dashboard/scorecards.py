"""The dashboard's scorecard pages: the team's coaching view and one conversation's scores.

Same scoping as the API: an agent sees their own conversations and coaching, a viewer the
aggregates (means, pass rates, calibration figures) with no conversation, evidence or
example moment; QA reviews are for admins and analysts.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from convolens.dashboard.daterange import DateRange
from convolens.scorecards.calibration import calibration
from convolens.scorecards.coaching import coaching_impact, coaching_report
from convolens.scorecards.definition import load_scorecards
from convolens.scorecards.store import QaEntry, conversation_scores, record_qa, scores_table
from convolens.service.auth import Principal, Role
from convolens.service.errors import ApiError
from convolens.service.results import find_conversation
from convolens.store.warehouse import Warehouse, WarehouseError

__all__ = ["conversation_page", "review", "team_page"]

OUTCOMES = ("pass", "fail", "na")


def reviews(principal: Principal) -> bool:
    return principal.role in (Role.admin, Role.analyst)


def team_page(
    db: Warehouse,
    principal: Principal,
    scorecard: str | None,
    coached: str | None = None,
    coached_on: date | None = None,
    *,
    dates: DateRange | None = None,
) -> dict[str, Any]:
    names = [c.name for c in load_scorecards()]
    chosen = scorecard if scorecard in names else names[0]
    agent = principal.agent or "" if principal.role == Role.agent else None
    report = coaching_report(db, chosen, agent=agent)
    if principal.role == Role.agent:
        report.top_quartile_agents = []
        report.coaching_list = [i for i in report.coaching_list if i.agent == principal.agent]
    if not principal.reads_text:
        for item in report.coaching_list:
            item.examples = []
    recent: list[dict[str, Any]] = []
    if principal.reads_text:
        since, until = dates.bounds() if dates is not None else (None, None)
        recent = [
            r
            for r in scores_table(db, scorecard=chosen, agent=agent)
            # The page's date range: scored conversations that started in it.
            if (since is None or (r["started_at"] is not None and r["started_at"] >= since))
            and (until is None or (r["started_at"] is not None and r["started_at"] < until))
        ][-50:][::-1]
    agreement = calibration(db, scorecard=chosen) if principal.role != Role.agent else None
    if agreement is not None and not principal.reads_text:
        for criterion in agreement.criteria:
            criterion.disagreements = []
    impact = None
    if coached_on is not None and principal.role != Role.viewer:
        who = principal.agent if principal.role == Role.agent else coached
        if who:
            impact = coaching_impact(db, who, coached_on, chosen)
    return {
        "impact": impact,
        "coached": coached or (principal.agent if principal.role == Role.agent else None),
        "coached_on": coached_on,
        "scorecards": names,
        "chosen": chosen,
        "report": report,
        "recent": recent,
        "agreement": agreement,
    }


def conversation_page(db: Warehouse, principal: Principal, ref: str) -> dict[str, Any]:
    header = find_conversation(db, principal, ref)  # an agent's lookup sees only theirs
    cid = header["conversation_id"]
    return {
        "c": header,
        "scores": conversation_scores(db, cid, quotes=True),
        "may_review": reviews(principal),
        "outcomes": OUTCOMES,
    }


def review(db: Warehouse, principal: Principal, ref: str, form: dict[str, str]) -> str:
    """Store the reviewer's outcomes from the form (`outcome.<criterion>`, `note.<criterion>`
    for one `scorecard`); only criteria whose outcome differs from the current one, or that
    carry a note, are recorded. Returns the conversation id."""
    if not reviews(principal):
        raise ApiError(403, "forbidden", "QA reviews are for admin and analyst keys")
    cid = find_conversation(db, principal, ref)["conversation_id"]
    scorecard = form.get("scorecard", "")
    current = conversation_scores(db, cid, scorecard=scorecard)
    if not current:
        raise ApiError(422, "invalid_review", f"no {scorecard!r} score to review")
    entries = []
    for criterion in current[0].criteria:
        outcome = form.get(f"outcome.{criterion.criterion}", "")
        note = form.get(f"note.{criterion.criterion}", "").strip()[:2000] or None
        if outcome not in OUTCOMES:
            continue
        if outcome != criterion.outcome or note:
            entries.append(QaEntry(criterion=criterion.criterion, outcome=outcome, note=note))  # type: ignore[arg-type]
    if entries:
        try:
            record_qa(db, cid, scorecard, entries, principal.name)
        except WarehouseError as exc:
            raise ApiError(422, "invalid_review", str(exc)) from None
    return cid
