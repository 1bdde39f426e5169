"""Drift and intake data health (#17 items 4 and 5): what each ingest run looked like per
source, what it got wrong against that source's history, and each drift check's figures.

No row holds conversation text or a person's data: profiles keep field paths, type and fill
counts and language codes; findings name fields and entity types, never values; drift rows
keep label values of the team's taxonomies (intents, trackers, sentiment) and numbers.
"""

from convolens.store.migrations import Migration

MIGRATION = Migration(
    9,
    "drift and data health",
    """
-- One row per (ingest run, source): the history that later runs are compared with.
CREATE TABLE intake_profiles (
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    records INTEGER NOT NULL,       -- conversations read from this source in the run
    duplicates INTEGER NOT NULL,    -- of them: already stored unchanged, or repeated in the run
    fields JSON NOT NULL,           -- raw field path -> {"types": {type: n}, "filled": n}
    fill JSON NOT NULL,             -- canonical field (agent, account_id, ...) -> n filled
    languages JSON NOT NULL         -- language code -> n
);
-- What a run got wrong against its source's history: one row per problem.
CREATE TABLE data_health_findings (
    finding_id VARCHAR NOT NULL,
    run_id VARCHAR NOT NULL,
    source VARCHAR NOT NULL,
    check_name VARCHAR NOT NULL,    -- schema_new_field, schema_missing_field, ...
    field VARCHAR,
    observed DOUBLE,
    expected DOUBLE,
    score DOUBLE,                   -- how far from expected, in the check's own unit
    message VARCHAR NOT NULL,
    created_at TIMESTAMPTZ NOT NULL
);
-- One row per (drift check, component, metric).
CREATE TABLE drift_results (
    check_id VARCHAR NOT NULL,
    checked_at TIMESTAMPTZ NOT NULL,
    component VARCHAR NOT NULL,
    metric VARCHAR NOT NULL,        -- psi, chi2_p, confidence_shift, centroid_cosine
    value DOUBLE,
    threshold DOUBLE,
    drifted BOOLEAN NOT NULL,
    recent_start TIMESTAMPTZ NOT NULL,
    recent_end TIMESTAMPTZ NOT NULL,
    reference_start TIMESTAMPTZ NOT NULL,
    reference_end TIMESTAMPTZ NOT NULL,
    recent_n INTEGER NOT NULL,
    reference_n INTEGER NOT NULL,
    details JSON
);
""",
)
