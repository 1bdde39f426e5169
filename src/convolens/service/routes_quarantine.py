"""`GET /v1/quarantine`: conversations intake could not redact, for admins only.

A quarantined conversation was never written to the normalised layer (#12); the entry
names the file and record it came from and why, never its text. Ingesting the file again
after the fix stores it and marks the entry released.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import PurePath
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel

from convolens.service.auth import Role, require
from convolens.service.errors import ErrorResponse
from convolens.service.state import Caller, Db
from convolens.store.quarantine import list_quarantine

__all__ = ["QuarantineEntry", "router"]

router = APIRouter(
    prefix="/v1",
    responses={code: {"model": ErrorResponse} for code in (401, 403, 422)},
)


class QuarantineEntry(BaseModel):
    conversation_id: str
    file: str  # the file's name: the server's folders are not for callers
    record: str | None
    source_format: str | None
    reason: str
    quarantined_at: datetime
    released_at: datetime | None = None


@router.get("/quarantine", response_model=list[QuarantineEntry], tags=["admin"])
def quarantine(
    db: Db,
    caller: Caller,
    include_released: Annotated[
        bool, Query(description="Also the entries a later ingest has released.")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=10_000)] = 1000,
) -> list[QuarantineEntry]:
    """Conversations held out of the warehouse because redaction failed (admin only)."""
    require(caller, Role.admin)
    return [
        QuarantineEntry(
            conversation_id=row["conversation_id"],
            file=PurePath(row["source_path"]).name,
            record=row["locator"] or None,
            source_format=row["source_format"],
            reason=row["reason"],
            quarantined_at=row["quarantined_at"],
            released_at=row["released_at"],
        )
        for row in list_quarantine(db, include_released=include_released, limit=limit)
    ]
