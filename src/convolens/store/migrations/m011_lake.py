"""Where the warehouse's lake is (#19): derived layers as Parquet apart from this file.

One row at most: the lake's URI (a folder or an object-store URI). Every process that
opens the warehouse attaches the lake from here, so the API, the dashboard and the CLI
read the same layers whichever engine wrote them. No row: everything stays in this file.
"""

from convolens.store.migrations import Migration

MIGRATION = Migration(
    11,
    "lake",
    """
CREATE TABLE lake_config (
    uri VARCHAR NOT NULL,
    set_at TIMESTAMPTZ NOT NULL
);
""",
)
