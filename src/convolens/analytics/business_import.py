"""Business data beside the conversations: accounts, orders and campaigns, and the stitch.

Conversations say what customers feel and ask; the CRM and the billing system say who they
are and what they are worth. Joining the two answers "which issues cost us ARR" and "do
accounts that mention a competitor churn". This module loads those tables from CSV or
Parquet and records, for every current conversation, which account it belongs to and by
which rule, so a doubtful match can be traced and overruled.

Loading goes through DuckDB (`read_csv` with every column as text, or `read_parquet`), so a
million-row order export is one scan, not a Python loop. Values are typed in SQL and a value
that does not parse is an error naming the file, the column and an example, never a silent
NULL. Re-importing replaces the rows with the same id (last import wins) and every import is
logged in `entity_imports`.

Stitching rules, first that matches wins (`rule` column of `conversation_accounts`):

1. `explicit_id`: the conversation's `account_id` link is an imported account id.
2. `order_id`: its `order_id` link is an imported order, whose account is imported.
3. `email`: a customer participant's address is one of an account's `contact_emails`.
4. `email_domain`: a customer participant's domain is an account's `email_domain`; free-mail
   domains (gmail.com, outlook.com, ...) are ignored on both sides, as they name no company.

A conversation whose first matching rule points at two accounts is left unstitched and
reported as ambiguous: guessing would put one customer's ARR behind another's issue.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import duckdb
from pydantic import BaseModel, Field

from convolens.store.warehouse import Warehouse, WarehouseError, now_utc

__all__ = [
    "DDL",
    "FREE_MAIL_DOMAINS",
    "BusinessDataError",
    "EntityKind",
    "ImportResult",
    "StitchResult",
    "ensure_tables",
    "existing_tables",
    "import_entities",
    "stitch",
]


class BusinessDataError(WarehouseError):
    """A business file or table the user must fix (missing column, bad value, no import)."""


class EntityKind(StrEnum):
    accounts = "accounts"
    orders = "orders"
    campaigns = "campaigns"


DDL = """
CREATE TABLE IF NOT EXISTS accounts (
    account_id VARCHAR NOT NULL,
    name VARCHAR,
    email_domain VARCHAR,
    contact_emails VARCHAR[],
    plan VARCHAR,
    arr DOUBLE,
    created_at TIMESTAMPTZ,
    churned_at TIMESTAMPTZ,
    campaign_id VARCHAR,
    attributes JSON,
    source_file VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS orders (
    order_id VARCHAR NOT NULL,
    account_id VARCHAR NOT NULL,
    amount DOUBLE,
    currency VARCHAR,
    ordered_at TIMESTAMPTZ,
    attributes JSON,
    source_file VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS campaigns (
    campaign_id VARCHAR NOT NULL,
    name VARCHAR,
    channel VARCHAR,
    started_at TIMESTAMPTZ,
    ended_at TIMESTAMPTZ,
    attributes JSON,
    source_file VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL
);
-- One row per import: which file, how many rows, how many replaced earlier ones.
CREATE TABLE IF NOT EXISTS entity_imports (
    run_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    file VARCHAR NOT NULL,
    file_sha256 VARCHAR NOT NULL,
    rows INTEGER NOT NULL,
    inserted INTEGER NOT NULL,
    replaced INTEGER NOT NULL,
    imported_at TIMESTAMPTZ NOT NULL
);
-- Which account each current conversation belongs to, and the rule that said so.
CREATE TABLE IF NOT EXISTS conversation_accounts (
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    account_id VARCHAR NOT NULL,
    rule VARCHAR NOT NULL,
    matched_value VARCHAR,
    run_id VARCHAR NOT NULL,
    stitched_at TIMESTAMPTZ NOT NULL
);
"""

# Addresses at these domains belong to people, not companies: a shared domain says nothing.
FREE_MAIL_DOMAINS: tuple[str, ...] = (
    "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "yahoo.fr", "ymail.com",
    "hotmail.com", "hotmail.co.uk", "hotmail.fr", "outlook.com", "live.com", "msn.com",
    "icloud.com", "me.com", "mac.com", "aol.com", "proton.me", "protonmail.com", "pm.me",
    "gmx.com", "gmx.de", "gmx.net", "web.de", "mail.com", "yandex.com", "yandex.ru",
    "zoho.com", "fastmail.com", "hey.com", "tutanota.com", "qq.com", "163.com",
    "mail.ru", "orange.fr", "free.fr", "laposte.net", "libero.it", "t-online.de",
)  # fmt: skip

RULES = ("explicit_id", "order_id", "email", "email_domain")


@dataclass(frozen=True)
class _Column:
    name: str
    kind: str  # text | upper_id | domain | emails | number | timestamp
    aliases: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Spec:
    table: str
    key: str
    required: tuple[str, ...]
    columns: tuple[_Column, ...]


_SPECS: dict[EntityKind, _Spec] = {
    EntityKind.accounts: _Spec(
        "accounts",
        "account_id",
        ("account_id",),
        (
            _Column("account_id", "text", ("account",)),
            _Column("name", "text", ("account_name", "company")),
            _Column("email_domain", "domain", ("domain",)),
            _Column("contact_emails", "emails", ("contact_email", "contacts", "email")),
            _Column("plan", "text"),
            _Column("arr", "number", ("annual_recurring_revenue",)),
            _Column("created_at", "timestamp", ("signed_up_at",)),
            _Column("churned_at", "timestamp"),
            _Column("campaign_id", "text", ("campaign",)),
        ),
    ),
    EntityKind.orders: _Spec(
        "orders",
        "order_id",
        ("order_id", "account_id"),
        (
            _Column("order_id", "text", ("order",)),
            _Column("account_id", "text", ("account",)),
            _Column("amount", "number", ("total",)),
            _Column("currency", "text"),
            _Column("ordered_at", "timestamp", ("order_date", "created_at")),
        ),
    ),
    EntityKind.campaigns: _Spec(
        "campaigns",
        "campaign_id",
        ("campaign_id",),
        (
            _Column("campaign_id", "text", ("campaign",)),
            _Column("name", "text", ("campaign_name",)),
            _Column("channel", "text"),
            _Column("started_at", "timestamp", ("start_date", "starts_at")),
            _Column("ended_at", "timestamp", ("end_date", "ends_at")),
        ),
    ),
}


class ImportResult(BaseModel):
    kind: EntityKind
    file: str
    rows: int
    inserted: int = Field(description="rows whose id was new")
    replaced: int = Field(description="rows that replaced an earlier import of the same id")
    run_id: str
    extra_columns: list[str] = Field(description="kept as JSON in the `attributes` column")
    warnings: list[str] = Field(default_factory=list)


class StitchResult(BaseModel):
    run_id: str
    conversations: int = Field(description="current conversations considered")
    stitched: int
    by_rule: dict[str, int]
    ambiguous: list[str] = Field(description="conversation ids whose best rule named 2+ accounts")
    unmatched: int


TABLES = ("accounts", "orders", "campaigns", "entity_imports", "conversation_accounts")


def existing_tables(warehouse: Warehouse) -> set[str]:
    """Which business tables this warehouse has (none before the first import)."""
    rows = warehouse.con.execute(
        "SELECT table_name FROM information_schema.tables "
        "WHERE table_schema = 'main' AND list_contains(?, table_name)",
        [list(TABLES)],
    ).fetchall()
    return {row[0] for row in rows}


def ensure_tables(warehouse: Warehouse) -> None:
    """Create the business tables if missing. A read-only warehouse without them (nothing
    was ever imported) is an error that says what to run."""
    if existing_tables(warehouse) == set(TABLES):
        return
    try:
        warehouse.con.execute(DDL)
    except duckdb.Error as exc:
        raise BusinessDataError(
            f"{warehouse.path}: no business data yet: run 'convolens import accounts FILE' ({exc})"
        ) from exc


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _count(warehouse: Warehouse, sql: str, params: list[object] | None = None) -> int:
    row = warehouse.con.execute(sql, params or []).fetchone()
    return int(row[0]) if row and row[0] is not None else 0


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _typed(expression: str, kind: str) -> str:
    """SQL turning a column (any type, read as text) into the stored type."""
    text = f"nullif(trim(CAST({expression} AS VARCHAR)), '')"
    if kind == "number":
        # Exports write money as "$12,000.50" or "12 000": strip currency signs and spaces,
        # and commas only where they group thousands; "1.200,50" or "12,5" (decimal commas)
        # stay unparsed and are reported, rather than read as 1.2005 or 125.
        clean = f"regexp_replace({text}, '[$€£\\s_]', '', 'g')"
        return (
            f"CASE WHEN contains({clean}, ',') AND NOT regexp_full_match({clean}, "
            f"'[+-]?\\d{{1,3}}(,\\d{{3}})+(\\.\\d+)?') THEN NULL "
            f"ELSE TRY_CAST(replace({clean}, ',', '') AS DOUBLE) END"
        )
    if kind == "timestamp":
        return f"TRY_CAST({text} AS TIMESTAMPTZ)"
    if kind == "domain":
        return f"regexp_replace(lower({text}), '^(@|www\\.)', '')"
    if kind == "emails":
        return (
            f"list_filter(list_transform(string_split_regex(lower({text}), '[;,\\s]+'), "
            "lambda x: trim(x)), lambda x: x LIKE '%_@_%')"
        )
    return text


def _read(warehouse: Warehouse, path: Path, stage: str) -> None:
    parquet = path.suffix.lower() in {".parquet", ".pq"}
    # CSV columns are read as text and typed below, so a bad value is reported, not guessed.
    reader = "read_parquet(?)" if parquet else "read_csv(?, all_varchar = true, header = true)"
    try:
        warehouse.con.execute(f"CREATE TEMP TABLE {stage} AS SELECT * FROM {reader}", [str(path)])
    except duckdb.Error as exc:
        kind = "Parquet" if parquet else "CSV"
        raise BusinessDataError(f"{path}: cannot read as {kind}: {exc}") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def import_entities(warehouse: Warehouse, path: str | Path, kind: EntityKind | str) -> ImportResult:
    """Load accounts, orders or campaigns from a CSV or Parquet file.

    Column names match case-insensitively (a few aliases too: `campaign` for
    `campaign_id`, `domain` for `email_domain`); columns the table does not know are kept in
    `attributes` as JSON. Rows replace earlier rows with the same id.
    """
    kind = EntityKind(kind)
    spec = _SPECS[kind]
    path = Path(path)
    if not path.is_file():
        raise BusinessDataError(f"{path}: no such file")
    ensure_tables(warehouse)
    stage = f"_import_{uuid.uuid4().hex}"
    _read(warehouse, path, stage)
    try:
        return _load(warehouse, path, kind, spec, stage)
    finally:
        warehouse.con.execute(f"DROP TABLE IF EXISTS {stage}")


def _load(
    warehouse: Warehouse, path: Path, kind: EntityKind, spec: _Spec, stage: str
) -> ImportResult:
    con = warehouse.con
    header = [row[0] for row in con.execute(f"DESCRIBE {stage}").fetchall()]
    by_lower = {name.strip().lower(): name for name in header}
    found: dict[str, str] = {}
    for column in spec.columns:
        for candidate in (column.name, *column.aliases):
            if candidate in by_lower and by_lower[candidate] not in found.values():
                found[column.name] = by_lower[candidate]
                break
    missing = [name for name in spec.required if name not in found]
    if missing:
        raise BusinessDataError(
            f"{path}: missing required column '{missing[0]}' for {kind.value} "
            f"(columns found: {', '.join(header) or 'none'})"
        )
    extras = [name for name in header if name not in found.values()]
    selects = []
    for column in spec.columns:
        source = found.get(column.name)
        expression = _typed(_quote(source), column.kind) if source else "NULL"
        selects.append(f"{expression} AS {column.name}")
        if source and column.kind in {"number", "timestamp"}:
            # The text beside its typed value, to report what did not parse.
            selects.append(
                f"nullif(trim(CAST({_quote(source)} AS VARCHAR)), '') AS _raw_{column.name}"
            )
    pairs = ", ".join(f"{_literal(e)}, {_quote(e)}" for e in extras)
    attributes = f"json_object({pairs})" if extras else "NULL"
    typed = f"_typed_{uuid.uuid4().hex}"
    con.execute(
        f"CREATE TEMP TABLE {typed} AS SELECT {', '.join(selects)}, "
        f"{attributes} AS attributes FROM {stage}"
    )
    try:
        _validate(warehouse, path, spec, found, typed)
        return _replace(warehouse, path, kind, spec, typed, extras)
    finally:
        con.execute(f"DROP TABLE IF EXISTS {typed}")


def _validate(
    warehouse: Warehouse, path: Path, spec: _Spec, found: dict[str, str], typed: str
) -> None:
    con = warehouse.con
    for name in spec.required:
        empty = _count(warehouse, f"SELECT count(*) FROM {typed} WHERE {name} IS NULL")
        if empty:
            raise BusinessDataError(f"{path}: {empty} row(s) have an empty '{name}'")
    # A value that does not parse must not become NULL silently (a churn date lost is a
    # churn not counted): name the column and show one offending value.
    for column in spec.columns:
        if column.kind not in {"number", "timestamp"} or column.name not in found:
            continue
        bad = con.execute(
            f"SELECT _raw_{column.name} FROM {typed} "
            f"WHERE _raw_{column.name} IS NOT NULL AND {column.name} IS NULL LIMIT 1"
        ).fetchone()
        if bad:
            expected = "a number" if column.kind == "number" else "a date or timestamp"
            raise BusinessDataError(
                f"{path}: column '{found[column.name]}' has {bad[0]!r}, which is not {expected}"
            )
    dupes = con.execute(
        f"SELECT {spec.key}, count(*) FROM {typed} GROUP BY 1 HAVING count(*) > 1 "
        "ORDER BY 2 DESC, 1 LIMIT 3"
    ).fetchall()
    if dupes:
        listed = ", ".join(f"{key!r} ({n} rows)" for key, n in dupes)
        raise BusinessDataError(f"{path}: '{spec.key}' repeats: {listed}")


def _replace(
    warehouse: Warehouse, path: Path, kind: EntityKind, spec: _Spec, typed: str, extras: list[str]
) -> ImportResult:
    con = warehouse.con
    rows = _count(warehouse, f"SELECT count(*) FROM {typed}")
    replaced = _count(
        warehouse,
        f"SELECT count(*) FROM {typed} WHERE {spec.key} IN (SELECT {spec.key} FROM {spec.table})",
    )
    warnings = []
    if kind is EntityKind.orders:
        orphans = _count(
            warehouse,
            f"SELECT count(*) FROM {typed} t ANTI JOIN accounts a USING (account_id)",
        )
        if orphans:
            warnings.append(
                f"{orphans} order(s) name an account not imported yet; they stitch once it is"
            )
    file = str(path.resolve())
    run_id = warehouse.start_run("import", {"kind": kind.value, "file": file})
    now = now_utc()
    columns = ", ".join(c.name for c in spec.columns)
    with warehouse.transaction():
        con.execute(
            f"DELETE FROM {spec.table} WHERE {spec.key} IN (SELECT {spec.key} FROM {typed})"
        )
        con.execute(
            f"INSERT INTO {spec.table} ({columns}, attributes, source_file, run_id, imported_at) "
            f"SELECT {columns}, attributes, ?, ?, ? FROM {typed}",
            [file, run_id, now],
        )
        con.execute(
            "INSERT INTO entity_imports VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, kind.value, file, _sha256(path), rows, rows - replaced, replaced, now],
        )
    warehouse.finish_run(run_id, {"rows": rows, "replaced": replaced})
    return ImportResult(
        kind=kind,
        file=file,
        rows=rows,
        inserted=rows - replaced,
        replaced=replaced,
        run_id=run_id,
        extra_columns=extras,
        warnings=warnings,
    )


_STITCH_SQL = """
WITH conv AS (
    SELECT conversation_id, version, trim(account_id) AS account_id, trim(order_id) AS order_id
    FROM conversations_current
),
customers AS (
    SELECT DISTINCT conversation_id, lower(trim(email)) AS email,
           split_part(lower(trim(email)), '@', 2) AS domain
    FROM participants_current
    WHERE role = 'customer' AND email LIKE '%_@_%'
),
contacts AS (
    -- Intake stores a customer's address as `<EMAIL_ADDRESS_{sha256[:8]}>@domain`
    -- (ingest/redact_intake.py, default salt): a contact matches that form too.
    SELECT account_id, email,
           '<email_address_' || left(sha256(email), 8) || '>@' || split_part(email, '@', 2)
               AS pseudonym
    FROM (SELECT account_id, lower(trim(unnest(contact_emails))) AS email FROM accounts)
),
candidates AS (
    SELECT c.conversation_id, a.account_id, 1 AS priority, c.account_id AS matched_value
    FROM conv c JOIN accounts a ON a.account_id = c.account_id
    UNION ALL
    SELECT c.conversation_id, o.account_id, 2, c.order_id
    FROM conv c JOIN orders o ON o.order_id = c.order_id
    JOIN accounts a ON a.account_id = o.account_id
    UNION ALL
    SELECT p.conversation_id, k.account_id, 3, k.email
    FROM customers p JOIN contacts k ON p.email = k.email OR p.email = k.pseudonym
    UNION ALL
    SELECT p.conversation_id, a.account_id, 4, p.domain
    FROM customers p JOIN accounts a ON a.email_domain = p.domain
    WHERE NOT list_contains($free, p.domain)
),
best AS (
    SELECT *, min(priority) OVER (PARTITION BY conversation_id) AS top FROM candidates
)
SELECT b.conversation_id, c.version, min(b.account_id) AS account_id,
       ['explicit_id', 'order_id', 'email', 'email_domain'][min(b.priority)] AS rule,
       min(b.matched_value) AS matched_value,
       count(DISTINCT b.account_id) AS accounts
FROM best b JOIN conv c USING (conversation_id)
WHERE b.priority = b.top
GROUP BY b.conversation_id, c.version
"""


def stitch(
    warehouse: Warehouse, *, free_mail_domains: tuple[str, ...] | list[str] = FREE_MAIL_DOMAINS
) -> StitchResult:
    """Link every current conversation to one account by the first rule that matches.

    Rebuilds `conversation_accounts` entirely: cheap (a few joins), and a re-import of
    accounts or new conversations then never leaves a stale link behind.
    """
    ensure_tables(warehouse)
    con = warehouse.con
    if not _count(warehouse, "SELECT count(*) FROM accounts"):
        raise BusinessDataError(
            "no accounts imported yet: run 'convolens import accounts FILE' first"
        )
    run_id = warehouse.start_run("stitch", {"free_mail_domains": len(free_mail_domains)})
    stage = f"_stitch_{uuid.uuid4().hex}"
    sql = _STITCH_SQL.replace("$free", "?::VARCHAR[]")
    con.execute(f"CREATE TEMP TABLE {stage} AS {sql}", [[d.lower() for d in free_mail_domains]])
    try:
        with warehouse.transaction():
            con.execute("DELETE FROM conversation_accounts")
            con.execute(
                f"INSERT INTO conversation_accounts SELECT conversation_id, version, account_id, "
                f"rule, matched_value, ?, ? FROM {stage} WHERE accounts = 1",
                [run_id, now_utc()],
            )
        by_rule = dict.fromkeys(RULES, 0)
        for rule, n in con.execute(
            f"SELECT rule, count(*) FROM {stage} WHERE accounts = 1 GROUP BY 1"
        ).fetchall():
            by_rule[rule] = n
        ambiguous = [
            row[0]
            for row in con.execute(
                f"SELECT conversation_id FROM {stage} WHERE accounts > 1 ORDER BY 1"
            ).fetchall()
        ]
    finally:
        con.execute(f"DROP TABLE IF EXISTS {stage}")
    total = _count(warehouse, "SELECT count(*) FROM conversation_heads")
    stitched = sum(by_rule.values())
    result = StitchResult(
        run_id=run_id,
        conversations=total,
        stitched=stitched,
        by_rule=by_rule,
        ambiguous=ambiguous,
        unmatched=total - stitched - len(ambiguous),
    )
    warehouse.finish_run(run_id, result.model_dump(exclude={"ambiguous"}))
    return result
