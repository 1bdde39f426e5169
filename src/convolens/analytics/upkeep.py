"""Keep the cross-conversation marts current as conversations arrive.

Once a warehouse has accounts imported or a clustering run, every newly labelled batch
should join them without anyone remembering to run `convolens stitch` or
`convolens clusters`: `convolens analyze` and the service's jobs call `after_labelling`.
It does nothing on a warehouse that uses neither, so plain installs pay nothing.
"""

from __future__ import annotations

from pydantic import BaseModel

from convolens.analytics import business_import, cluster_store
from convolens.store.warehouse import Warehouse

__all__ = ["Upkeep", "after_labelling"]


class Upkeep(BaseModel):
    stitched: int | None = None  # conversations linked to an account, when accounts exist
    clustered: int | None = None  # newly placed in an existing cluster, when clusters exist
    unclustered: int | None = None


def after_labelling(warehouse: Warehouse) -> Upkeep:
    """Re-stitch conversations to accounts and place new conversations in the clusters."""
    done = Upkeep()
    tables = business_import.existing_tables(warehouse)
    if "accounts" in tables and warehouse.query("SELECT 1 FROM accounts LIMIT 1"):
        done.stitched = business_import.stitch(warehouse).stitched
    fit = cluster_store.current_run_id(warehouse)
    if fit is not None and cluster_store.read_statements(warehouse, unseen_by=fit):
        run = cluster_store.assign_new(warehouse, examples=0)
        done.clustered, done.unclustered = run.clustered, run.unclustered
    return done
