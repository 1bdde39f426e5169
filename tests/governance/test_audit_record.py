"""The audit log's library surface: record, query with filters, its own retention."""

from __future__ import annotations

from datetime import timedelta

from convolens.audit import Actor, AuditFilter, purge_audit, query_audit, record
from convolens.store.schema import MIGRATIONS
from convolens.store.warehouse import Warehouse, now_utc

ADMIN = Actor(key_id="k-admin", name="ops admin", role="admin")


def test_record_and_filter(warehouse: Warehouse) -> None:
    assert warehouse.schema_version() == MIGRATIONS[-1].version
    record(warehouse, "key.create", actor=ADMIN, via="api", target_type="api_key", target_id="k2")
    record(warehouse, "key.revoke", actor=ADMIN, via="api", target_type="api_key", target_id="k2")
    record(
        warehouse, "raw.read", actor=Actor("k-an", "analyst one", "analyst"), via="api",
        target_type="conversation", target_id="chat-1", outcome="denied", status=403,
    )  # fmt: skip
    everything = query_audit(warehouse)
    assert [e.action for e in everything] == ["raw.read", "key.revoke", "key.create"]
    keys = query_audit(warehouse, AuditFilter(action="key."))
    assert {e.action for e in keys} == {"key.create", "key.revoke"}
    denied = query_audit(warehouse, AuditFilter(outcome="denied"))
    assert len(denied) == 1 and denied[0].actor_role == "analyst" and denied[0].status == 403
    by_name = query_audit(warehouse, AuditFilter(actor="ops admin"))
    assert len(by_name) == 2 and all(e.actor_key_id == "k-admin" for e in by_name)
    assert query_audit(warehouse, AuditFilter(target_id="chat-1"))[0].action == "raw.read"
    assert query_audit(warehouse, AuditFilter(since=now_utc() + timedelta(seconds=5))) == []


def test_details_never_hold_text_or_secrets(warehouse: Warehouse) -> None:
    record(
        warehouse,
        "webhook.create",
        actor=ADMIN,
        details={"secret": "whsec-1234", "text": "hello there", "hook_id": "wh_1", "n": 2,
                 "nested": {"api_token": "t0k3n", "rows": 4}, "long": "x" * 5000},
    )  # fmt: skip
    entry = query_audit(warehouse)[0]
    assert entry.details["hook_id"] == "wh_1" and entry.details["n"] == 2
    assert entry.details["nested"] == {"rows": 4}
    assert len(entry.details["long"]) == 200
    stored = warehouse.query("SELECT CAST(audit_log AS VARCHAR) AS r FROM audit_log")[0]["r"]
    assert "whsec-1234" not in stored and "hello there" not in stored and "t0k3n" not in stored


def test_audit_retention_removes_only_old_rows_and_records_itself(warehouse: Warehouse) -> None:
    for i in range(3):
        record(warehouse, "export", actor=ADMIN, target_id=f"old-{i}")
    record(warehouse, "export", actor=ADMIN, target_id="recent")
    # Backdate the three "old" rows past a 30-day retention.
    warehouse.con.execute(
        "UPDATE audit_log SET occurred_at = occurred_at - INTERVAL 40 DAY "
        "WHERE starts_with(target_id, 'old-')"
    )
    assert purge_audit(warehouse, 30, actor=ADMIN) == 3
    left = query_audit(warehouse)
    assert [e.target_id for e in left if e.action == "export"] == ["recent"]
    purge = [e for e in left if e.action == "audit.retention"]
    assert len(purge) == 1 and purge[0].details["removed"] == 3
    assert purge[0].actor_key_id == "k-admin"
