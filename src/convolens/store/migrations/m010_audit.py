"""The audit log (#17 item 6): who did what to which target, when, and how it went.

Append-only: convolens.audit writes rows and never updates them; the only delete is the
audit log's own retention (off unless configured), which is itself recorded. A row never
holds conversation text, a person's data or a secret: actors are key ids and names,
targets are ids, and an erasure's receipt holds counts and hashed conversation ids.
"""

from convolens.store.migrations import Migration

MIGRATION = Migration(
    10,
    "audit log",
    """
CREATE TABLE audit_log (
    audit_id VARCHAR NOT NULL,
    occurred_at TIMESTAMPTZ NOT NULL,
    actor_key_id VARCHAR,
    actor_name VARCHAR,
    actor_role VARCHAR,
    via VARCHAR NOT NULL,
    action VARCHAR NOT NULL,
    target_type VARCHAR,
    target_id VARCHAR,
    outcome VARCHAR NOT NULL,
    status INTEGER,
    request_id VARCHAR,
    route VARCHAR,
    details JSON
);
""",
)
