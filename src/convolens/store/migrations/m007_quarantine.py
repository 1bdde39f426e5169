"""Quarantine (#12): conversations that redaction could not pass, kept out of the normalised layer.

A row names the conversation, where it came from (file and record) and why; it never holds
the conversation's text (that stays only in the raw layer's source, which was not written
either: the source file is what a re-ingest reads). Admins list the rows; a later ingest
that redacts and stores the conversation marks its rows released.
"""

from convolens.store.migrations import Migration

MIGRATION = Migration(
    7,
    "quarantine: conversations that redaction could not pass",
    """
CREATE TABLE quarantine (
    quarantine_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    conversation_id VARCHAR NOT NULL,
    source_format VARCHAR,
    source_path VARCHAR NOT NULL,
    locator VARCHAR,
    reason VARCHAR NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL,
    released_at TIMESTAMPTZ,
    released_by_run VARCHAR
);
""",
)
