"""Erasure by person (#17 item 7): every conversation they take part in or are named in,
and every other row and spooled file that mentions them, gone to the byte.

A person is given by any of email, phone, customer id, account id. Their conversations are
those where a participant, the conversation's fields or metadata, its text or its raw
record holds one of these; the participant rows found that way add the person's other
identifiers (the customer id beside the email, the email beside the phone) for a second
look. Those conversations are erased whole (store/erase.py: every table keyed by
conversation, jobs, webhook deliveries, spooled files, cluster representatives, freed
bytes), and so is any row elsewhere that still mentions the person (a reject, a job, a
delivery, a run's arguments, a table added later), and the run-level rows of the ingest
runs that read their records (intake profiles, data-health findings). Their names (from
the matched participant rows, where intake redaction left them) are edited out of tables
about no one conversation. An address is also matched in the pseudonymised form intake
redaction writes (`<EMAIL_ADDRESS_1a2b3c4d>@domain`, default policy), so the person is
found after their raw records have expired. Configuration tables (API keys, webhooks,
definitions, scorecards) and the audit log are not searched.

An enrolled voice print (`speaker_voices`, biometric) goes when its name is the person's:
given as `name`, or held by one of the participant rows their identifiers matched. A
name is matched whole (case and surrounding spaces aside) and finds no conversations:
two people can share one.

The receipt says what went: counts per table, the number of files and the conversations'
ids hashed, never the person's data; it is stored in the audit log.
"""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, model_validator

from convolens.audit.log import Via, record
from convolens.client.governance_models import ErasureReceipt
from convolens.store.erase import Edit, erase_conversations
from convolens.store.warehouse import Warehouse, now_utc

__all__ = ["ErasureReceipt", "Person", "erase_person", "find_person", "voices_of"]

# Not searched: configuration and the audit log (the receipt lives there).
_NOT_SEARCHED = frozenset(
    {"audit_log", "schema_migrations", "api_keys", "webhooks", "definitions",
     "scorecard_versions"}
)  # fmt: skip
_MIN_PHONE_DIGITS = 7
_MIN_NAME = 5  # shorter names ("Sam") would be edited out of unrelated places
_KINDS = ("email", "phone", "customer_id", "account_id", "name")
# Enrolled voice prints: deleted by exact name (below), never edited into "(erased)".
_VOICES = "speaker_voices"


class Person(BaseModel):
    """Who to erase: at least one identifier (or only `name`: their enrolled voice)."""

    email: str | None = Field(default=None, max_length=320)
    phone: str | None = Field(default=None, max_length=40)
    customer_id: str | None = Field(default=None, max_length=200)
    account_id: str | None = Field(default=None, max_length=200)
    name: str | None = Field(
        default=None,
        max_length=200,
        description="The name their voice is enrolled under (`speakers enrol`): the voice "
        "print is erased. A name finds no conversations: it is not an identifier.",
    )

    @model_validator(mode="after")
    def _one_at_least(self) -> Person:
        for field in _KINDS:
            value = getattr(self, field)
            if value is not None:
                setattr(self, field, value.strip() or None)
        if not any(getattr(self, field) for field in _KINDS):
            raise ValueError("name the person: email, phone, customer_id, account_id or name")
        if self.email and "@" not in self.email:
            raise ValueError("email: not an email address")
        if self.phone and len(re.sub(r"\D", "", self.phone)) < _MIN_PHONE_DIGITS:
            raise ValueError(f"phone: fewer than {_MIN_PHONE_DIGITS} digits")
        if any(v is not None and len(v) < 3 for v in (self.customer_id, self.account_id)):
            raise ValueError("customer_id/account_id: at least 3 characters")
        return self

    def kinds(self) -> list[str]:
        return [n for n in _KINDS if getattr(self, n)]


def _pseudonyms(email: str) -> set[str]:
    """What intake redaction (ingest/redact_intake.py) writes for a customer's address in
    the normalised layer, `<EMAIL_ADDRESS_1a2b3c4d>@domain` under the default policy: the
    person's conversations are found by it once their raw records have expired."""
    from convolens.ingest.redact_intake import intake_redactor

    pseudonym = getattr(intake_redactor(), "_email_pseudonym", None)
    return {str(pseudonym(email)).lower()} if callable(pseudonym) else set()


def _phone_pattern(phone: str) -> str:
    """A regex for the number written any usual way: the last ten digits (the national
    number) with up to three separators between digits."""
    digits = re.sub(r"\D", "", phone)[-10:]
    return r"(^|[^0-9])" + r"[\s().+/-]{0,3}".join(digits) + r"([^0-9]|$)"


def _id_pattern(value: str) -> str:
    return r"(^|[^A-Za-z0-9])" + re.escape(value) + r"([^A-Za-z0-9]|$)"


class _Needles:
    """The person's identifiers as SQL predicates over a text expression and as byte
    tests for files."""

    def __init__(self) -> None:
        self.emails: set[str] = set()
        self.patterns: set[str] = set()
        # Names of the participant rows that matched: not searched for (a name is not an
        # identifier), only edited out of tables about no one conversation (below).
        self.names: set[str] = set()
        # Their names as an enrolled voice would be keyed (any length: matched whole).
        self.voice_names: set[str] = set()

    @classmethod
    def of(cls, person: Person) -> _Needles:
        needles = cls()
        if person.email:
            needles.emails.add(person.email.lower())
            needles.emails |= _pseudonyms(person.email)
        if person.phone:
            needles.patterns.add(_phone_pattern(person.phone))
        for value in (person.customer_id, person.account_id):
            if value:
                needles.patterns.add(_id_pattern(value))
        if person.name:
            needles.voice_names.add(person.name.strip().lower())
        return needles

    def sql(self, expr: str) -> tuple[str, list[Any]]:
        parts, params = [], []
        for email in sorted(self.emails):
            parts.append(f"contains(lower({expr}), ?)")
            params.append(email)
        for pattern in sorted(self.patterns):
            parts.append(f"regexp_matches({expr}, ?)")
            params.append(pattern)
        return "(" + " OR ".join(parts or ["FALSE"]) + ")", params

    def in_bytes(self, data: bytes) -> bool:
        text = data.decode("utf-8", errors="replace")
        lowered = text.lower()
        return any(e in lowered for e in self.emails) or any(
            re.search(p, text) for p in self.patterns
        )


def _base_tables(wh: Warehouse) -> dict[str, set[str]]:
    rows = wh.query(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = 'main' AND t.table_type = 'BASE TABLE' "
        "AND NOT starts_with(c.table_name, '_erase')"
    )
    tables: dict[str, set[str]] = {}
    for r in rows:
        tables.setdefault(r["table_name"], set()).add(r["column_name"])
    return {t: cols for t, cols in tables.items() if t not in _NOT_SEARCHED}


def _run_level_rows(wh: Warehouse, ids: list[str]) -> dict[str, tuple[str, list[Any]]]:
    """Rows derived from a whole ingest run that read the person's records (an intake
    profile, a data-health finding: they can hold field paths made of the records' own
    keys, a sidecar's `roles: {"<name>": ...}`): deleted with the run's conversations."""
    if not ids:
        return {}
    runs = [
        r["run_id"]
        for r in wh.query(
            "SELECT DISTINCT run_id FROM conversations WHERE list_contains(?, conversation_id) "
            "UNION SELECT DISTINCT run_id FROM raw_interactions "
            "WHERE list_contains(?, conversation_id)",
            [ids, ids],
        )
    ]
    out: dict[str, tuple[str, list[Any]]] = {}
    for table, columns in _base_tables(wh).items():
        if "run_id" in columns and "conversation_id" not in columns and table != "runs":
            out[table] = ("list_contains(?, run_id)", [runs])
    return out


def _name_edits(wh: Warehouse, names: set[str]) -> tuple[list[Edit], dict[str, int]]:
    """Edits that replace the person's names with "(erased)" in the text columns of tables
    about no one conversation (an intake profile that learnt a sidecar's field names from
    `roles: {"<name>": "customer"}`, say), keeping those rows."""
    if not names:
        return [], {}
    pattern = "(?i)(" + "|".join(re.escape(n) for n in sorted(names)) + ")"
    rows = wh.query(
        "SELECT c.table_name, c.column_name FROM information_schema.columns c "
        "JOIN information_schema.tables t USING (table_schema, table_name) "
        "WHERE c.table_schema = 'main' AND t.table_type = 'BASE TABLE' "
        "AND c.data_type IN ('VARCHAR', 'JSON') ORDER BY 1, 2"
    )
    tables = _base_tables(wh)
    edits: list[Edit] = []
    counts: dict[str, int] = {}
    for r in rows:
        table, column = r["table_name"], r["column_name"]
        if table not in tables or "conversation_id" in tables[table] or table == _VOICES:
            continue
        text = f'CAST("{column}" AS VARCHAR)'
        condition = f"regexp_matches({text}, ?)"
        found = wh.query(f"SELECT count(*) AS n FROM {table} WHERE {condition}", [pattern])
        if found[0]["n"]:
            counts[table] = max(counts.get(table, 0), int(found[0]["n"]))
            assignment = f"\"{column}\" = regexp_replace({text}, ?, '(erased)', 'g')"
            edits.append((table, assignment, [pattern], condition, [pattern]))
    return edits, counts


def _row_text(table: str, alias: str) -> str:
    """The whole row as text; a raw record's payload decoded (a BLOB cast shows escapes)."""
    if table in ("raw_interactions", "rejects"):
        return f"(coalesce(try(decode({alias}.payload)), '') || ' ' || CAST({alias} AS VARCHAR))"
    return f"CAST({alias} AS VARCHAR)"


def _spool_files(spool: Path | None) -> list[Path]:
    if spool is None or not spool.exists():
        return []
    return [p for p in spool.rglob("*") if p.is_file() and not p.is_symlink()]


def find_person(
    wh: Warehouse, person: Person, *, spool: Path | None = None
) -> tuple[list[str], _Needles]:
    """The ids of the person's conversations, and their identifiers (widened by the
    participant rows that matched)."""
    needles = _Needles.of(person)
    ids = _matching_conversations(wh, needles, spool)
    if ids:
        condition, params = needles.sql("CAST(p AS VARCHAR)")
        for row in wh.query(
            "SELECT name, email, CAST(external_ids AS VARCHAR) AS ext FROM participants p "
            f"WHERE list_contains(?, conversation_id) AND {condition}",
            [ids, *params],
        ):
            if row["email"] and "@" in row["email"]:
                needles.emails.add(row["email"].lower())
            name = (row["name"] or "").strip()
            # Not a placeholder intake redaction left ("<PERSON>"): that is no one's name.
            if name and "<" not in name:
                needles.voice_names.add(name.lower())
            if len(name) >= _MIN_NAME and "<" not in name:
                needles.names.add(name)
            for value in _id_values(row["ext"]):
                needles.patterns.add(_id_pattern(value))
        ids = sorted(set(ids) | set(_matching_conversations(wh, needles, spool)))
    return ids, needles


def _id_values(external_ids: str | None) -> list[str]:
    """The identifier values of a participant's external_ids (JSON object or list)."""
    if not external_ids:
        return []
    try:
        parsed = json.loads(external_ids)
    except ValueError:
        return []
    values = list(parsed.values()) if isinstance(parsed, dict) else parsed
    if not isinstance(values, list):
        return []
    texts = [str(v).strip() for v in values if isinstance(v, str | int)]
    return [t for t in texts if len(t) >= 3]


def _matching_conversations(wh: Warehouse, needles: _Needles, spool: Path | None) -> list[str]:
    ids: set[str] = set()
    for table, columns in _base_tables(wh).items():
        if "conversation_id" not in columns:
            continue
        condition, params = needles.sql(_row_text(table, "t"))
        rows = wh.query(
            f"SELECT DISTINCT conversation_id FROM {table} t WHERE conversation_id IS NOT NULL "
            f"AND {condition}",
            params,
        )
        ids |= {r["conversation_id"] for r in rows}
    # A spooled file that names them: the conversations its jobs made.
    named = [str(p) for p in _spool_files(spool) if needles.in_bytes(p.read_bytes())]
    if named:
        for r in wh.query(
            "SELECT conversation_id, CAST(result AS VARCHAR) AS result FROM jobs "
            "WHERE list_contains(?, input_path) OR len(list_filter(?::VARCHAR[], lambda f: "
            "contains(coalesce(CAST(request AS VARCHAR), ''), f))) > 0",
            [named, named],
        ):
            if r["conversation_id"]:
                ids.add(r["conversation_id"])
            result = json.loads(r["result"]) if r["result"] else {}
            ids |= set(result.get("conversation_ids") or [])
    return sorted(ids)


def _voice_condition(needles: _Needles) -> tuple[str, list[Any]]:
    return "list_contains(?, lower(trim(name)))", [sorted(needles.voice_names)]


def voices_of(wh: Warehouse, needles: _Needles) -> int:
    """How many enrolled voice prints are the person's (see the module doc)."""
    if not needles.voice_names or _VOICES not in _base_tables(wh):
        return 0
    condition, params = _voice_condition(needles)
    return int(wh.query(f"SELECT count(*) AS n FROM {_VOICES} WHERE {condition}", params)[0]["n"])


def erase_person(
    wh: Warehouse,
    person: Person,
    *,
    spool: Path | None = None,
    actor: Any = None,
    via: Via = "library",
    request_id: str | None = None,
) -> ErasureReceipt:
    """Erase everything of `person` (see the module doc); returns the receipt, which is
    also recorded in the audit log (action "erasure")."""
    ids, needles = find_person(wh, person, spool=spool)
    also: dict[str, tuple[str, list[Any]]] = _run_level_rows(wh, ids)
    for table in _base_tables(wh):
        condition, params = needles.sql(_row_text(table, "x"))
        hits = wh.query(f"SELECT count(*) AS n FROM {table} x WHERE {condition}", params)
        if hits[0]["n"]:
            mention = f"rowid IN (SELECT x.rowid FROM {table} x WHERE {condition})"
            if table in also:
                old, old_params = also[table]
                also[table] = (f"({old}) OR ({mention})", [*old_params, *params])
            else:
                also[table] = (mention, params)
    if needles.voice_names and _VOICES in _base_tables(wh):
        voices = _voice_condition(needles)
        if _VOICES in also:
            old, old_params = also[_VOICES]
            voices = (f"({old}) OR ({voices[0]})", [*old_params, *voices[1]])
        also[_VOICES] = voices
    edits, edited = _name_edits(wh, needles.names)
    erased = erase_conversations(wh, ids, spool=spool, also=also, edits=edits)
    files = len(erased.files)
    # Spooled files that still name them (a body whose job failed before making a row).
    for path in _spool_files(spool):
        if needles.in_bytes(path.read_bytes()):
            path.unlink()
            files += 1
    erasure_id = "er_" + hashlib.sha256(f"{now_utc().isoformat()}{ids}".encode()).hexdigest()[:16]
    receipt = ErasureReceipt(
        erasure_id=erasure_id,
        erased_at=now_utc().isoformat(),
        identifiers=person.kinds(),
        conversations=len(ids),
        conversation_hashes=[hashlib.sha256(c.encode()).hexdigest()[:16] for c in ids],
        rows={t: n for t, n in sorted(erased.rows.items()) if n},
        edited=edited,
        files=files,
    )
    receipt.audit_id = record(
        wh,
        "erasure",
        actor=actor,
        via=via,
        target_type="person",
        target_id=erasure_id,
        request_id=request_id,
        details=receipt.model_dump(exclude={"audit_id"}),
    )
    return receipt
