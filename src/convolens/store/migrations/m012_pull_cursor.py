"""Where each helpdesk pull left off (`convolens pull`): one row per source and site.

`cursor` is the source's own position (Zendesk's incremental-export cursor, Intercom's
latest `updated_at`), saved only after the pulled conversations are in the warehouse,
so a pull that fails half-way is simply pulled again next time.
"""

from convolens.store.migrations import Migration

MIGRATION = Migration(
    12,
    "pull_cursor",
    """
CREATE TABLE pull_cursors (
    source VARCHAR NOT NULL,
    site VARCHAR NOT NULL,
    cursor VARCHAR NOT NULL,
    pulled_at TIMESTAMPTZ NOT NULL,
    conversations INTEGER NOT NULL,
    PRIMARY KEY (source, site)
);
""",
)
