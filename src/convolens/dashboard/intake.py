"""First run and uploads from the dashboard: files in through the API's own upload, then
the job's progress, then the results.

An empty warehouse opens on this page instead of charts of nothing. The form posts to
the dashboard (its session cookie and CSRF token, checked by the route class), and the
file goes through `routes_conversations.upload`, the function behind POST /v1/uploads:
the same format detection, mapping, size limit, spool and ingest job, so a file taken
here is taken exactly as the API would take it. Keys that may not submit (viewers) are
told who can.
"""

from __future__ import annotations

from typing import Any, cast

from fastapi import Request
from fastapi import UploadFile as FastApiUpload
from starlette.datastructures import FormData, UploadFile

from convolens.ingest.registry import adapter_names
from convolens.service.auth import Principal, Role
from convolens.service.errors import ApiError

__all__ = ["first_run", "job", "job_state", "submit"]

UPLOAD_ROLES = frozenset({Role.admin, Role.analyst, Role.agent})


def first_run(principal: Principal) -> dict[str, Any]:
    return {
        "may_upload": principal.role in UPLOAD_ROLES,
        "formats": adapter_names(),
    }


def submit(request: Request, db: Any, principal: Principal, form: FormData) -> str:
    """Hand the form's file to the API's upload; the job id."""
    from convolens.service.routes_conversations import upload

    file = form.get("file")
    if not isinstance(file, UploadFile) or not file.filename:
        raise ApiError(422, "missing_file", "choose a file to upload")

    def text(name: str) -> str | None:
        value = form.get(name)
        return value.strip() or None if isinstance(value, str) else None

    # A parsed form holds Starlette's UploadFile; FastAPI's class only subclasses it.
    accepted = upload(
        request, db, principal, file=cast(FastApiUpload, file), format=text("format"),
        metadata=None, language=None, webhook_url=None, mapping=text("mapping"),
    )  # fmt: skip
    return accepted.job_id


def job(db: Any, principal: Principal, job_id: str) -> Any:
    """The job (404 for one this key may not see, as GET /v1/jobs/{id})."""
    from convolens.service.routes_conversations import get_job

    return get_job(job_id, db, principal)


def job_state(db: Any, principal: Principal, job_id: str) -> dict[str, Any]:
    """What the progress page shows: status, stage, progress, error message and result
    counts (the error without its detail: the page is not a debugging tool)."""
    found = job(db, principal, job_id)
    error = found.error or {}
    result = found.result or {}
    return {
        "job_id": found.job_id,
        "status": found.status,
        "stage": found.stage,
        "progress": found.progress,
        "done": found.done,
        "error": error.get("message"),
        "conversations": result.get("conversations"),
        "new": result.get("new"),
        # Reasons only (the API already strips paths from them): what to fix in the file.
        "rejects": [
            f"{r.get('record')}: {r.get('reason')}"
            for r in (result.get("rejects") or error.get("detail") or [])[:5]
            if isinstance(r, dict)
        ],
        "conversation_ids": [str(c) for c in result.get("conversation_ids") or []][:50],
    }
