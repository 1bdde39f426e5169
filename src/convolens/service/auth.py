"""API keys with roles.

A key reads `clk_<key id>_<secret>`; only the SHA-256 of the whole key is stored, so a
leaked database leaks no usable key (keys are 256-bit random, so a plain hash is enough:
there is nothing to brute-force). Roles, from most to least:

- admin: everything, including raw (unredacted) text when asked for explicitly;
- analyst: all conversations (redacted text), results and aggregates; submits work;
- agent: only conversations where they are the agent (`agent` of the key = the
  conversation's agent); submits work;
- viewer: aggregates only, no conversation text.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from enum import StrEnum

from fastapi import Request, WebSocket
from pydantic import BaseModel

from convolens.service.errors import ApiError
from convolens.store.warehouse import Warehouse, now_utc

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyInfo",
    "Principal",
    "Role",
    "authenticate",
    "create_key",
    "hash_key",
    "list_keys",
    "revoke_key",
]

PREFIX = "clk_"


class Role(StrEnum):
    admin = "admin"
    analyst = "analyst"
    agent = "agent"
    viewer = "viewer"


class Principal(BaseModel):
    key_id: str
    name: str
    role: Role
    agent: str | None = None

    @property
    def reads_text(self) -> bool:
        return self.role in (Role.admin, Role.analyst, Role.agent)

    @property
    def submits(self) -> bool:
        return self.role in (Role.admin, Role.analyst, Role.agent)


class ApiKeyCreate(BaseModel):
    name: str
    role: Role
    agent: str | None = None


class ApiKeyInfo(BaseModel):
    key_id: str
    name: str
    role: Role
    agent: str | None = None
    created_at: str
    revoked: bool = False


class ApiKeyCreated(ApiKeyInfo):
    key: str  # shown once; only its hash is stored


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def create_key(
    warehouse: Warehouse,
    body: ApiKeyCreate,
    created_by: str | None = None,
    *,
    key: str | None = None,
) -> ApiKeyCreated:
    """A new key (random, or `key` when an operator provides one, e.g. CONVOLENS_ADMIN_KEY)."""
    if body.role == Role.agent and not body.agent:
        raise ApiError(
            422, "agent_required", "an agent key needs `agent`: the agent name it may see"
        )
    if key is None:
        key_id = uuid.uuid4().hex[:12]
        key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    elif not key.startswith(PREFIX) or key.count("_") < 2 or len(key) < 32:
        raise ValueError("an API key must look like clk_<id>_<secret of 20+ characters>")
    else:
        key_id = key[len(PREFIX) :].split("_", 1)[0]
    created = now_utc()
    warehouse.con.execute(
        "INSERT INTO api_keys (key_id, name, role, agent, secret_sha256, created_at, created_by) "
        "VALUES (?, ?, ?, ?, ?, ?, ?)",
        [key_id, body.name, body.role.value, body.agent, hash_key(key), created, created_by],
    )
    return ApiKeyCreated(
        key_id=key_id,
        name=body.name,
        role=body.role,
        agent=body.agent,
        created_at=created.isoformat(),
        key=key,
    )


def list_keys(warehouse: Warehouse) -> list[ApiKeyInfo]:
    rows = warehouse.query(
        "SELECT key_id, name, role, agent, created_at, revoked_at FROM api_keys ORDER BY created_at"
    )
    return [
        ApiKeyInfo(
            key_id=r["key_id"],
            name=r["name"],
            role=Role(r["role"]),
            agent=r["agent"],
            created_at=r["created_at"].isoformat(),
            revoked=r["revoked_at"] is not None,
        )
        for r in rows
    ]


def revoke_key(warehouse: Warehouse, key_id: str) -> bool:
    found = warehouse.query(
        "SELECT 1 FROM api_keys WHERE key_id = ? AND revoked_at IS NULL", [key_id]
    )
    if found:
        warehouse.con.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE key_id = ?", [now_utc(), key_id]
        )
    return bool(found)


def lookup(warehouse: Warehouse, key: str) -> Principal | None:
    """The principal of a presented key, or None for an unknown, malformed or revoked one."""
    if not key.startswith(PREFIX) or key.count("_") < 2:
        return None
    key_id = key[len(PREFIX) :].split("_", 1)[0]
    rows = warehouse.query(
        "SELECT key_id, name, role, agent, secret_sha256 FROM api_keys "
        "WHERE key_id = ? AND revoked_at IS NULL",
        [key_id],
    )
    if not rows or not hmac.compare_digest(rows[0]["secret_sha256"], hash_key(key)):
        return None
    r = rows[0]
    return Principal(key_id=r["key_id"], name=r["name"], role=Role(r["role"]), agent=r["agent"])


def presented_key(connection: Request | WebSocket) -> str | None:
    header = connection.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    if key := connection.headers.get("x-api-key"):
        return key.strip()
    # Browsers cannot set headers on a WebSocket: the stream endpoint also takes ?api_key=.
    if isinstance(connection, WebSocket):
        return connection.query_params.get("api_key")
    return None


def authenticate(warehouse: Warehouse, connection: Request | WebSocket) -> Principal:
    key = presented_key(connection)
    if not key:
        raise ApiError(
            401,
            "missing_api_key",
            "send an API key as 'Authorization: Bearer <key>' (or 'X-API-Key: <key>')",
        )
    principal = lookup(warehouse, key)
    if principal is None:
        raise ApiError(401, "invalid_api_key", "this API key is unknown or has been revoked")
    return principal


def require(principal: Principal, *roles: Role) -> None:
    if principal.role not in roles:
        allowed = ", ".join(r.value for r in roles)
        raise ApiError(
            403,
            "forbidden",
            f"a {principal.role.value} key cannot do this (needs one of: {allowed})",
        )
