"""Wire models of the governance routes (audit log, retention, erasure), kept apart from
the server code that fills them so the SDK needs only httpx and pydantic."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

__all__ = ["AuditEntry", "ErasureReceipt", "RetentionReport"]


class AuditEntry(BaseModel):
    audit_id: str
    occurred_at: datetime
    actor_key_id: str | None = None
    actor_name: str | None = None
    actor_role: str | None = None
    via: str
    action: str
    target_type: str | None = None
    target_id: str | None = None
    outcome: str
    status: int | None = None
    request_id: str | None = None
    route: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


class RetentionReport(BaseModel):
    policy: dict[str, str]
    conversations: int = 0
    rows: dict[str, int] = Field(default_factory=dict)
    files: int = 0
    audit_rows: int = 0
    audit_id: str | None = None


class ErasureReceipt(BaseModel):
    erasure_id: str
    erased_at: str
    identifiers: list[str]  # which kinds were given: "email", "phone", ...
    conversations: int
    conversation_hashes: list[str]  # sha256 of each conversation id, first 16 hex digits
    rows: dict[str, int]  # rows deleted, per table
    edited: dict[str, int] = Field(default_factory=dict)  # rows kept with the name taken out
    files: int
    audit_id: str | None = None
