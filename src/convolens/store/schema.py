"""The warehouse schema, as numbered migrations applied in order and recorded in the file.

Layers: raw (`raw_interactions`, `rejects`) -> normalised (`conversations`, `participants`,
`utterances`, `words`) -> enriched (`metrics_*`, `enrichments`) -> marts (views, later).
Every normalised row carries the conversation `version`: a changed source creates a new
version and keeps the old one; the `*_current` views show the newest version only.
Tables have no primary-key constraints because DuckDB's index checks slow bulk inserts
and the writer enforces uniqueness itself (see store/warehouse.py).
"""

from __future__ import annotations

from convolens.store.migrations import Migration, numbered_migrations

__all__ = ["LAYERS", "MIGRATIONS", "Migration"]


_CURRENT_VIEWS = """
CREATE OR REPLACE VIEW conversation_heads AS
    SELECT conversation_id, max(version) AS version FROM conversations GROUP BY conversation_id;
CREATE OR REPLACE VIEW conversations_current AS
    SELECT c.* FROM conversations c JOIN conversation_heads h USING (conversation_id, version);
CREATE OR REPLACE VIEW participants_current AS
    SELECT p.* FROM participants p JOIN conversation_heads h USING (conversation_id, version);
CREATE OR REPLACE VIEW utterances_current AS
    SELECT u.* FROM utterances u JOIN conversation_heads h USING (conversation_id, version);
CREATE OR REPLACE VIEW words_current AS
    SELECT w.* FROM words w JOIN conversation_heads h USING (conversation_id, version);
CREATE OR REPLACE VIEW metrics_conversation_current AS
    SELECT m.* FROM metrics_conversation m
    JOIN conversation_heads h USING (conversation_id, version);
CREATE OR REPLACE VIEW metrics_participant_current AS
    SELECT m.* FROM metrics_participant m
    JOIN conversation_heads h USING (conversation_id, version);
CREATE OR REPLACE VIEW metrics_pairs_current AS
    SELECT m.* FROM metrics_participant_pairs m
    JOIN conversation_heads h USING (conversation_id, version);
CREATE OR REPLACE VIEW enrichments_current AS
    SELECT e.* FROM enrichments e JOIN conversation_heads h USING (conversation_id, version);
"""

MIGRATIONS: list[Migration] = [
    Migration(
        1,
        "layers: raw, normalised, metrics, enrichments",
        """
CREATE TABLE runs (
    run_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    finished_at TIMESTAMPTZ,
    convolens_version VARCHAR,
    args JSON,
    stats JSON
);
CREATE TABLE raw_interactions (
    raw_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    source_format VARCHAR NOT NULL,
    source_path VARCHAR NOT NULL,
    locator VARCHAR,
    encoding VARCHAR,
    payload BLOB NOT NULL,
    payload_sha256 VARCHAR NOT NULL,
    received_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE rejects (
    run_id VARCHAR NOT NULL,
    source_format VARCHAR,
    source_path VARCHAR NOT NULL,
    locator VARCHAR,
    reason VARCHAR NOT NULL,
    payload BLOB,
    rejected_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE conversations (
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    content_hash VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    ingested_at TIMESTAMPTZ NOT NULL,
    channel VARCHAR NOT NULL,
    language VARCHAR,
    started_at TIMESTAMPTZ,
    duration_seconds DOUBLE,
    subject VARCHAR,
    source_system VARCHAR NOT NULL,
    source_id VARCHAR,
    source_format VARCHAR,
    platform VARCHAR,
    queue VARCHAR,
    agent VARCHAR,
    campaign VARCHAR,
    tags VARCHAR[],
    account_id VARCHAR,
    user_id VARCHAR,
    order_id VARCHAR,
    ticket_id VARCHAR,
    campaign_id VARCHAR,
    participant_count INTEGER NOT NULL,
    utterance_count INTEGER NOT NULL,
    meta JSON
);
CREATE TABLE participants (
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    participant_id VARCHAR NOT NULL,
    position INTEGER NOT NULL,
    name VARCHAR,
    role VARCHAR NOT NULL,
    email VARCHAR,
    external_ids JSON
);
CREATE TABLE utterances (
    utterance_id VARCHAR NOT NULL,
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    seq INTEGER NOT NULL,
    participant_id VARCHAR NOT NULL,
    text VARCHAR NOT NULL,
    start_s DOUBLE,
    end_s DOUBLE,
    sent_at TIMESTAMPTZ,
    channel_index INTEGER,
    internal BOOLEAN NOT NULL,
    meta JSON
);
CREATE TABLE words (
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    utterance_id VARCHAR NOT NULL,
    word_index INTEGER NOT NULL,
    text VARCHAR NOT NULL,
    start_s DOUBLE NOT NULL,
    end_s DOUBLE NOT NULL,
    confidence DOUBLE
);
CREATE TABLE metrics_conversation (
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    metrics_version INTEGER NOT NULL,
    run_id VARCHAR NOT NULL,
    computed_at TIMESTAMPTZ NOT NULL,
    timed BOOLEAN NOT NULL,
    participant_count INTEGER,
    message_count INTEGER,
    word_count INTEGER,
    question_count INTEGER,
    duration_s DOUBLE,
    speech_s DOUBLE,
    silence_s DOUBLE,
    long_silence_count INTEGER,
    long_silence_s DOUBLE,
    overlap_s DOUBLE,
    interruptions INTEGER,
    speaker_switches INTEGER,
    switches_per_minute DOUBLE,
    first_response_s DOUBLE,
    median_response_s DOUBLE,
    exchanges INTEGER,
    elapsed_s DOUBLE
);
CREATE TABLE metrics_participant (
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    metrics_version INTEGER NOT NULL,
    run_id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    role VARCHAR,
    message_count INTEGER,
    word_count INTEGER,
    question_count INTEGER,
    talk_s DOUBLE,
    talk_share DOUBLE,
    talk_ratio DOUBLE,
    listen_s DOUBLE,
    words_per_minute DOUBLE,
    longest_monologue_s DOUBLE,
    median_latency_s DOUBLE,
    p90_latency_s DOUBLE,
    interruptions INTEGER,
    interrupted INTEGER,
    overlap_s DOUBLE,
    first_response_s DOUBLE,
    median_response_s DOUBLE
);
CREATE TABLE metrics_participant_pairs (
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    metrics_version INTEGER NOT NULL,
    run_id VARCHAR NOT NULL,
    participant_id VARCHAR NOT NULL,
    other_participant_id VARCHAR NOT NULL,
    overlap_s DOUBLE,
    interruptions INTEGER
);
-- Filled by enrichment components (sentiment, intents, ...): one row per label, with
-- the lineage needed to trust it (component, version, model, taxonomy, run) and the
-- evidence it rests on (utterance ids and character spans, as JSON).
CREATE TABLE enrichments (
    enrichment_id VARCHAR NOT NULL,
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    utterance_id VARCHAR,
    component VARCHAR NOT NULL,
    component_version VARCHAR NOT NULL,
    model_id VARCHAR,
    taxonomy_version VARCHAR,
    run_id VARCHAR NOT NULL,
    label VARCHAR NOT NULL,
    value JSON,
    confidence DOUBLE,
    evidence JSON,
    created_at TIMESTAMPTZ NOT NULL
);
"""
        + _CURRENT_VIEWS,
    ),
]

MIGRATIONS.append(
    Migration(
        2,
        "enrichment status: which component version has labelled which conversation version",
        """
-- One row per (conversation version, component version) processed, even when the
-- component found nothing to label, so `analyze` knows what is missing.
CREATE TABLE enrichment_status (
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    component VARCHAR NOT NULL,
    component_version VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    labels INTEGER NOT NULL,
    processed_at TIMESTAMPTZ NOT NULL
);
""",
    )
)

MIGRATIONS.append(
    Migration(
        3,
        "reprocessing: taxonomy version in enrichment_status; labels_current view",
        """
-- A new taxonomy (trackers, intents, PII settings) relabels like a new component version.
ALTER TABLE enrichment_status ADD COLUMN taxonomy_version VARCHAR;
-- The labels of the latest run of each component on each current conversation version:
-- reprocessing writes beside the old rows, and this is what readers mean by "the labels".
CREATE OR REPLACE VIEW labels_current AS
    SELECT e.* FROM enrichments e
    JOIN (
        SELECT conversation_id, version, component, arg_max(run_id, processed_at) AS run_id
        FROM enrichment_status GROUP BY ALL
    ) s USING (conversation_id, version, component, run_id)
    JOIN conversation_heads h USING (conversation_id, version);
""",
    )
)

MIGRATIONS.append(
    Migration(
        4,
        "service: API keys, durable jobs, webhooks and their delivery log, stored definitions",
        """
-- API keys: only a SHA-256 of the secret is kept (the secret is shown once, at creation).
CREATE TABLE api_keys (
    key_id VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    role VARCHAR NOT NULL,
    agent VARCHAR,
    secret_sha256 VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    created_by VARCHAR,
    revoked_at TIMESTAMPTZ
);
-- The job queue lives here so a restarted server finds what was scheduled or running.
CREATE TABLE jobs (
    job_id VARCHAR NOT NULL,
    kind VARCHAR NOT NULL,
    status VARCHAR NOT NULL,
    conversation_id VARCHAR,
    request JSON,
    input_path VARCHAR,
    webhook_url VARCHAR,
    attempts INTEGER NOT NULL,
    max_attempts INTEGER NOT NULL,
    run_after TIMESTAMPTZ NOT NULL,
    worker VARCHAR,
    stage VARCHAR,
    progress DOUBLE,
    error JSON,
    result JSON,
    created_by VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    started_at TIMESTAMPTZ,
    finished_at TIMESTAMPTZ
);
CREATE TABLE webhooks (
    hook_id VARCHAR NOT NULL,
    url VARCHAR NOT NULL,
    events VARCHAR[] NOT NULL,
    rule JSON,
    secret VARCHAR NOT NULL,
    payload_format VARCHAR NOT NULL,
    active BOOLEAN NOT NULL,
    created_by VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE webhook_deliveries (
    delivery_id VARCHAR NOT NULL,
    hook_id VARCHAR,
    url VARCHAR NOT NULL,
    event VARCHAR NOT NULL,
    payload JSON NOT NULL,
    status VARCHAR NOT NULL,
    attempts INTEGER NOT NULL,
    next_attempt_at TIMESTAMPTZ,
    response_status INTEGER,
    last_error VARCHAR,
    created_at TIMESTAMPTZ NOT NULL,
    delivered_at TIMESTAMPTZ
);
-- Taxonomies and tracker sets managed over the API: each edit is a new version.
CREATE TABLE definitions (
    kind VARCHAR NOT NULL,
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    content VARCHAR NOT NULL,
    content_sha256 VARCHAR NOT NULL,
    -- The version the server's pipeline uses (one per kind).
    active BOOLEAN NOT NULL,
    created_by VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);
""",
    )
)

MIGRATIONS.append(
    Migration(
        5,
        "api keys: where a key came from; keys from CONVOLENS_ADMIN_KEY disabled without it",
        """
-- 'api' (POST /v1/keys), 'generated' (first start) or 'environment' (CONVOLENS_ADMIN_KEY).
ALTER TABLE api_keys ADD COLUMN source VARCHAR DEFAULT 'api';
-- Set while the server runs without the variable an environment key came from; cleared
-- when it runs with it again. Unlike revoked_at (an admin's decision), this is reversible.
ALTER TABLE api_keys ADD COLUMN disabled_at TIMESTAMPTZ;
UPDATE api_keys SET source = 'environment'
    WHERE name = 'admin (from environment)' AND created_by IS NULL;
UPDATE api_keys SET source = 'generated' WHERE name = 'bootstrap admin' AND created_by IS NULL;
""",
    )
)

MIGRATIONS.append(
    Migration(
        6,
        "quality scorecards: stored scorecard versions and human QA scores",
        """
-- Scorecards managed over the API/CLI: each edit is a new version; one active per name.
CREATE TABLE scorecard_versions (
    name VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    scorecard_version VARCHAR NOT NULL,
    content VARCHAR NOT NULL,
    active BOOLEAN NOT NULL,
    created_by VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);
-- A QA reviewer's verdict on one criterion of one conversation version; the newest row
-- per (conversation, scorecard, criterion) counts and overrides the automatic outcome.
CREATE TABLE qa_scores (
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    scorecard VARCHAR NOT NULL,
    criterion VARCHAR NOT NULL,
    outcome VARCHAR NOT NULL,
    note VARCHAR,
    reviewer VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);
""",
    )
)

# Migrations 7 and later, one module each in store/migrations/.
MIGRATIONS.extend(numbered_migrations())
_versions = [m.version for m in MIGRATIONS]
if _versions != sorted(set(_versions)):
    raise RuntimeError(f"migration versions out of order or repeated: {_versions}")

# Export/inspection layers: name -> (relation for current data, relation for all versions).
LAYERS: dict[str, tuple[str, str]] = {
    "raw": ("raw_interactions", "raw_interactions"),
    "rejects": ("rejects", "rejects"),
    "conversations": ("conversations_current", "conversations"),
    "participants": ("participants_current", "participants"),
    "utterances": ("utterances_current", "utterances"),
    "words": ("words_current", "words"),
    "metrics_conversation": ("metrics_conversation_current", "metrics_conversation"),
    "metrics_participant": ("metrics_participant_current", "metrics_participant"),
    "metrics_pairs": ("metrics_pairs_current", "metrics_participant_pairs"),
    "enrichments": ("enrichments_current", "enrichments"),
    "labels": ("labels_current", "enrichments"),
    "runs": ("runs", "runs"),
}
