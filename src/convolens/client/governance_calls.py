"""The SDK's governance calls (admin keys): the audit log (GET /v1/audit), erasure by
person (POST /v1/erasure) and retention (GET /v1/retention, POST /v1/retention/run),
shared by `Client` and `AsyncClient`."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from convolens.client.calls import _Call, _model
from convolens.client.governance_models import AuditEntry, ErasureReceipt, RetentionReport

__all__ = [
    "AsyncGovernanceMethods",
    "GovernanceMethods",
    "audit_call",
    "erase_person_call",
    "retention_call",
    "retention_run_call",
]


def audit_call(
    *,
    action: str | None = None,
    actor: str | None = None,
    target_id: str | None = None,
    outcome: str | None = None,
    via: str | None = None,
    since: datetime | str | None = None,
    until: datetime | str | None = None,
    limit: int | None = None,
) -> _Call[list[AuditEntry]]:
    params: dict[str, Any] = {
        "action": action, "actor": actor, "target_id": target_id, "outcome": outcome,
        "via": via, "since": since, "until": until, "limit": limit,
    }  # fmt: skip
    return _Call("GET", "/v1/audit", _model(list[AuditEntry]), params=params)


def erase_person_call(
    *,
    email: str | None = None,
    phone: str | None = None,
    customer_id: str | None = None,
    account_id: str | None = None,
    name: str | None = None,
) -> _Call[ErasureReceipt]:
    body = {"email": email, "phone": phone, "customer_id": customer_id, "account_id": account_id,
            "name": name}  # fmt: skip
    body = {k: v for k, v in body.items() if v is not None}
    return _Call("POST", "/v1/erasure", _model(ErasureReceipt), json=body)


def retention_call() -> _Call[dict[str, str]]:
    return _Call("GET", "/v1/retention", _model(dict[str, str]))


def retention_run_call() -> _Call[RetentionReport]:
    return _Call("POST", "/v1/retention/run", _model(RetentionReport))


class GovernanceMethods:
    """`Client`'s governance methods (mixed in: sdk.py stays about the core calls)."""

    def _do(self, call: _Call[Any]) -> Any:  # provided by Client
        raise NotImplementedError

    def audit(self, **filters: Any) -> list[AuditEntry]:
        """The audit log, newest first; `filters` as `audit_call` (admin keys)."""
        result: list[AuditEntry] = self._do(audit_call(**filters))
        return result

    def erase_person(self, **person: str) -> ErasureReceipt:
        """Erase a person by email, phone, customer_id and/or account_id; the receipt.
        `name`: the name their voice is enrolled under (its print is erased; a name finds
        no conversations)."""
        result: ErasureReceipt = self._do(erase_person_call(**person))
        return result

    def retention(self) -> dict[str, str]:
        result: dict[str, str] = self._do(retention_call())
        return result

    def retention_run(self) -> RetentionReport:
        result: RetentionReport = self._do(retention_run_call())
        return result


class AsyncGovernanceMethods:
    """`AsyncClient`'s governance methods, awaited."""

    async def _do(self, call: _Call[Any]) -> Any:  # provided by AsyncClient
        raise NotImplementedError

    async def audit(self, **filters: Any) -> list[AuditEntry]:
        result: list[AuditEntry] = await self._do(audit_call(**filters))
        return result

    async def erase_person(self, **person: str) -> ErasureReceipt:
        result: ErasureReceipt = await self._do(erase_person_call(**person))
        return result

    async def retention(self) -> dict[str, str]:
        result: dict[str, str] = await self._do(retention_call())
        return result

    async def retention_run(self) -> RetentionReport:
        result: RetentionReport = await self._do(retention_run_call())
        return result
