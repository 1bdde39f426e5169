"""The audit log (#17 item 6): who read raw text, exported, changed keys, taxonomies,
trackers, webhooks or scorecards, deleted, erased, reviewed, or signed in.

`record(warehouse, action, actor=..., target_id=...)` appends one row (library code, the
CLI, the scheduler); the service records every state-changing and sensitive request once,
centrally, in `convolens.audit.http.AuditMiddleware`, and a route that knows more (an
erasure's receipt) adds it with `annotate(request, ...)`. Reading it is for admins only.
"""

from convolens.audit.log import (
    ACTIONS,
    Actor,
    AuditEntry,
    AuditFilter,
    cli_actor,
    purge_audit,
    query_audit,
    record,
)

__all__ = [
    "ACTIONS",
    "Actor",
    "AuditEntry",
    "AuditFilter",
    "cli_actor",
    "purge_audit",
    "query_audit",
    "record",
]
