"""API keys with roles.

A key reads `clk_<key id>_<secret>`; only the SHA-256 of the whole key is stored, so a
leaked database leaks no usable key (keys are 256-bit random, so a plain hash is enough:
there is nothing to brute-force). A key an operator provides (CONVOLENS_ADMIN_KEY) must be
as hard to guess: `check_key_strength` refuses short, repetitive or low-variety secrets.

The environment key is a bootstrap only (`bootstrap_admin`): it becomes an admin key when
the warehouse has no usable admin key, it works only while the server runs with that
variable (a restart without it disables it, a restart with it enables it again), and a key
an admin revoked stays revoked whatever the environment says. Roles, from most to least:

- admin: everything, including raw (unredacted) text when asked for explicitly;
- analyst: all conversations (redacted text), results and aggregates; submits work;
- agent: only conversations where they are the agent (`agent` of the key = the
  conversation's agent); submits work;
- viewer: aggregates only, no conversation text.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
import uuid
from collections import Counter
from enum import StrEnum
from itertools import pairwise
from pathlib import Path
from typing import Literal

from fastapi import Request, WebSocket
from pydantic import BaseModel

from convolens.service.errors import ApiError
from convolens.store.private import private_file
from convolens.store.warehouse import Warehouse, now_utc

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreated",
    "ApiKeyInfo",
    "Principal",
    "Role",
    "authenticate",
    "bootstrap_admin",
    "check_key_strength",
    "create_key",
    "hand_over_generated_key",
    "hash_key",
    "list_keys",
    "revoke_key",
]

PREFIX = "clk_"
KeySource = Literal["api", "generated", "environment"]
log = logging.getLogger("convolens.service.auth")

# An operator-provided key: clk_<id>_<secret>. The id is what the database looks keys up by;
# the secret must carry roughly what a generated key does (token_urlsafe(32): 43 characters).
_PROVIDED_KEY = re.compile(r"clk_(?P<id>[A-Za-z0-9-]{1,32})_(?P<secret>[A-Za-z0-9_.~-]+)")
MIN_SECRET_CHARS = 24
MIN_DISTINCT_CHARS = 10


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
    source: KeySource = "api"
    # An environment key while the server runs without its variable (see the module doc).
    disabled: bool = False


class ApiKeyCreated(ApiKeyInfo):
    key: str  # shown once; only its hash is stored


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def check_key_strength(key: str) -> None:
    """ValueError saying why, if an operator-provided key is malformed or easy to guess."""
    match = _PROVIDED_KEY.fullmatch(key)
    if match is None:
        raise ValueError(
            "an API key must read clk_<id>_<secret>: an id of letters, digits or '-' and a "
            "secret of letters, digits and '_.~-'"
        )
    secret = match["secret"]
    counts = Counter(secret)
    # The shortest n with secret[i] == secret[i + n] throughout: "s3crets3cret..." -> 6.
    period = next((n for n in range(1, len(secret) // 2 + 1) if secret[n:] == secret[:-n]), None)
    if len(secret) < MIN_SECRET_CHARS:
        reason = f"its secret has {len(secret)} characters (at least {MIN_SECRET_CHARS})"
    elif len(counts) < MIN_DISTINCT_CHARS:
        reason = f"its secret has {len(counts)} distinct characters (at least {MIN_DISTINCT_CHARS})"
    elif max(counts.values()) * 4 > len(secret):
        reason = "one character makes up more than a quarter of its secret"
    elif period is not None:
        reason = f"its secret repeats a {period}-character pattern"
    elif sum(abs(ord(a) - ord(b)) <= 1 for a, b in pairwise(secret)) * 3 > len(secret):
        reason = "its secret is mostly runs like 'abcd', '4321' or 'xxxx'"
    else:
        return
    raise ValueError(
        f"this API key is too easy to guess: {reason}; make one with "
        "python -c \"import secrets; print('clk_admin_' + secrets.token_urlsafe(32))\""
    )


def create_key(
    warehouse: Warehouse,
    body: ApiKeyCreate,
    created_by: str | None = None,
    *,
    key: str | None = None,
    source: KeySource = "api",
) -> ApiKeyCreated:
    """A new key (random, or `key` when an operator provides one, e.g. CONVOLENS_ADMIN_KEY,
    which must pass `check_key_strength`)."""
    if body.role == Role.agent and not body.agent:
        raise ApiError(
            422, "agent_required", "an agent key needs `agent`: the agent name it may see"
        )
    if key is None:
        key_id = uuid.uuid4().hex[:12]
        key = f"{PREFIX}{key_id}_{secrets.token_urlsafe(32)}"
    else:
        check_key_strength(key)
        key_id = key[len(PREFIX) :].split("_", 1)[0]
        if warehouse.query("SELECT 1 FROM api_keys WHERE key_id = ?", [key_id]):
            raise ValueError(f"an API key with id {key_id!r} exists already")
    created = now_utc()
    warehouse.con.execute(
        "INSERT INTO api_keys (key_id, name, role, agent, secret_sha256, created_at, created_by, "
        "source) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        [key_id, body.name, body.role.value, body.agent, hash_key(key), created, created_by,
         source],
    )  # fmt: skip
    return ApiKeyCreated(
        key_id=key_id,
        name=body.name,
        role=body.role,
        agent=body.agent,
        created_at=created.isoformat(),
        source=source,
        key=key,
    )


def bootstrap_admin(warehouse: Warehouse, given: str | None) -> str | None:
    """Apply CONVOLENS_ADMIN_KEY (`given`, None when unset) at server start; returns a newly
    generated admin key for the caller to show once, else None.

    - environment keys other than `given` are disabled (the variable is their only source);
      `given`'s own key is enabled again if it was disabled, never if it was revoked;
    - `given` becomes an admin key only while the warehouse has no usable admin key;
      otherwise it is ignored with a warning (create keys with POST /v1/keys instead);
    - with no usable admin key and no `given`, a random admin key is generated.
    """
    given = given or None  # set but empty: unset
    if given is not None:
        check_key_strength(given)
    now = now_utc()
    given_hash = hash_key(given) if given else ""
    warehouse.con.execute(
        "UPDATE api_keys SET disabled_at = ? WHERE source = 'environment' "
        "AND disabled_at IS NULL AND secret_sha256 <> ?",
        [now, given_hash],
    )
    if given:
        warehouse.con.execute(
            "UPDATE api_keys SET disabled_at = NULL WHERE source = 'environment' "
            "AND secret_sha256 = ?",
            [given_hash],
        )
    usable_admin = warehouse.query(
        "SELECT 1 FROM api_keys WHERE role = 'admin' AND revoked_at IS NULL "
        "AND disabled_at IS NULL LIMIT 1"
    )
    if given:
        key_id = given[len(PREFIX) :].split("_", 1)[0]
        known = warehouse.query(
            "SELECT secret_sha256, revoked_at FROM api_keys WHERE key_id = ?", [key_id]
        )
        if known and not hmac.compare_digest(known[0]["secret_sha256"], given_hash):
            log.warning("CONVOLENS_ADMIN_KEY ignored: key id %r belongs to another key", key_id)
        elif known and known[0]["revoked_at"] is not None:
            log.warning("CONVOLENS_ADMIN_KEY %r was revoked: it stays revoked", key_id)
        elif not known and usable_admin:
            log.warning(
                "CONVOLENS_ADMIN_KEY ignored: the warehouse has an admin key already (the "
                "variable only bootstraps the first one; create keys with POST /v1/keys)"
            )
        elif not known:
            create_key(
                warehouse, ApiKeyCreate(name="admin (from environment)", role=Role.admin),
                key=given, source="environment",
            )  # fmt: skip
            return None
    if usable_admin:
        return None
    created = create_key(
        warehouse, ApiKeyCreate(name="bootstrap admin", role=Role.admin), source="generated"
    )
    return created.key


def hand_over_generated_key(key: str, db: Path, *, terminal: bool) -> str:
    """The line `convolens serve` prints for a key `bootstrap_admin` generated. On a terminal
    it is the key itself; otherwise stdout is a log (a service manager's, a container's)
    that keeps every line, so the key goes to `<db>.admin-key`, owner-only, and the line
    says where."""
    key_id = key[len(PREFIX) :].split("_", 1)[0]
    if terminal:
        return f"convolens: created an admin API key (shown once): {key}"
    path = db.with_name(db.name + ".admin-key")
    path.unlink(missing_ok=True)
    with private_file(path) as out:
        out.write(key.encode("utf-8") + b"\n")
    return (
        f"convolens: created an admin API key ({key_id}); it is in {path} (readable by this "
        "user only): take it from there, then delete the file"
    )


def list_keys(warehouse: Warehouse) -> list[ApiKeyInfo]:
    rows = warehouse.query(
        "SELECT key_id, name, role, agent, created_at, revoked_at, source, disabled_at "
        "FROM api_keys ORDER BY created_at"
    )
    return [
        ApiKeyInfo(
            key_id=r["key_id"],
            name=r["name"],
            role=Role(r["role"]),
            agent=r["agent"],
            created_at=r["created_at"].isoformat(),
            revoked=r["revoked_at"] is not None,
            source=r["source"] or "api",
            disabled=r["disabled_at"] is not None,
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
        "WHERE key_id = ? AND revoked_at IS NULL AND disabled_at IS NULL",
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
