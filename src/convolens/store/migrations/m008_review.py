"""Label review (#17): sampled labels for people to check, their verdicts, and taxonomy status.

`review_items` is a sample of enrichment rows; each records its stratum (`random`, drawn
uniformly within a component/label/value stratum, the one precision is estimated from;
`low_confidence` and `disagreement`, picked for learning) and its sampling weight (the
stratum's population over its sample size for `random`; 0 for the purposive strata, which
take no part in the estimates). `reviews` holds one row per reviewer's verdict, append-only.
Taxonomy versions in `definitions` gain a status (draft, validated, active, retired), who
approved the activation, and the cross-validated figures shown before it.
"""

from convolens.store.migrations import Migration

MIGRATION = Migration(
    8,
    "label review: review items and verdicts; taxonomy version status and approval",
    """
CREATE TABLE review_items (
    item_id VARCHAR NOT NULL,
    batch_id VARCHAR NOT NULL,
    position INTEGER NOT NULL,
    enrichment_id VARCHAR NOT NULL,
    conversation_id VARCHAR NOT NULL,
    version INTEGER NOT NULL,
    utterance_id VARCHAR,
    component VARCHAR NOT NULL,
    component_version VARCHAR NOT NULL,
    taxonomy_version VARCHAR,
    label VARCHAR NOT NULL,
    value VARCHAR NOT NULL,
    confidence DOUBLE,
    stratum VARCHAR NOT NULL,
    weight DOUBLE NOT NULL,
    population INTEGER NOT NULL,
    reviews_wanted INTEGER NOT NULL,
    -- When the conversation happened (else when it was labelled): the week of the figures.
    occurred_at TIMESTAMPTZ,
    created_by VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE reviews (
    review_id VARCHAR NOT NULL,
    item_id VARCHAR NOT NULL,
    reviewer VARCHAR NOT NULL,
    reviewer_name VARCHAR,
    verdict VARCHAR NOT NULL,
    corrected_value VARCHAR,
    missed_values VARCHAR[],
    note VARCHAR,
    created_at TIMESTAMPTZ NOT NULL
);
ALTER TABLE definitions ADD COLUMN status VARCHAR;
ALTER TABLE definitions ADD COLUMN approved_by VARCHAR;
ALTER TABLE definitions ADD COLUMN approved_at TIMESTAMPTZ;
ALTER TABLE definitions ADD COLUMN validation JSON;
UPDATE definitions SET status = CASE WHEN active THEN 'active' ELSE 'retired' END;
""",
)
