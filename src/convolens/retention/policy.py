"""How long each layer of the warehouse is kept: the retention policy and where it is read.

Off unless configured (nothing is ever deleted by surprise); `CONVOLENS_RETENTION=on`
turns on the recommended policy below, and each layer can be set on its own:

- raw: raw records as received (unredacted), rejects' payloads, spooled uploads, finished
  jobs, webhook deliveries. `on`: 90 days (CONVOLENS_RETENTION_RAW_DAYS).
- text: whole conversations: redacted text, participants, labels, metrics, review items.
  `on`: 730 days, two years (CONVOLENS_RETENTION_TEXT_DAYS).
- aggregates: tables not about one conversation (clusters' labels, phrases and sizes,
  annotations, accounts, definitions, scorecards): kept forever.
- audit: the audit log itself. `on`: forever (CONVOLENS_RETENTION_AUDIT_DAYS).

A number of days (>= 1) sets a layer; `0` or `forever` keeps it forever. A conversation's
age is its start time (`started_at`, else when it was ingested); a raw row's age is when
it was received.
"""

from __future__ import annotations

import os
from collections.abc import Mapping

from pydantic import BaseModel, Field

__all__ = ["RECOMMENDED", "RetentionPolicy"]

RECOMMENDED = {"raw_days": 90, "text_days": 730, "audit_days": None}


class RetentionPolicy(BaseModel):
    """Days to keep each layer; None keeps it forever."""

    raw_days: int | None = Field(default=None, ge=1)
    text_days: int | None = Field(default=None, ge=1)
    audit_days: int | None = Field(default=None, ge=1)
    # How often `convolens serve` applies it (the first run is shortly after the start).
    interval_s: float = Field(default=6 * 3600, gt=0)

    @property
    def enabled(self) -> bool:
        return any(v is not None for v in (self.raw_days, self.text_days, self.audit_days))

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> RetentionPolicy:
        """The policy from CONVOLENS_RETENTION* variables (see the module doc)."""
        env = os.environ if env is None else env
        switch = env.get("CONVOLENS_RETENTION", "off").strip().lower()
        if switch not in ("on", "off", ""):
            raise ValueError(f"CONVOLENS_RETENTION={switch!r}: use 'on' or 'off'")
        values: dict[str, int | None] = dict(RECOMMENDED) if switch == "on" else {}
        for layer in ("raw", "text", "audit"):
            given = env.get(f"CONVOLENS_RETENTION_{layer.upper()}_DAYS")
            if given is not None and given.strip():
                values[f"{layer}_days"] = _days(f"CONVOLENS_RETENTION_{layer.upper()}_DAYS", given)
        interval = env.get("CONVOLENS_RETENTION_INTERVAL_S")
        policy = cls.model_validate(values)
        if interval:
            policy.interval_s = float(interval)
        return policy

    def describe(self) -> dict[str, str]:
        def days(value: int | None) -> str:
            return "forever" if value is None else f"{value} days"

        return {
            "raw": days(self.raw_days),
            "text": days(self.text_days),
            "aggregates": "forever",
            "audit": days(self.audit_days),
        }


def _days(name: str, value: str) -> int | None:
    value = value.strip().lower()
    if value in ("0", "forever", "none"):
        return None
    try:
        days = int(value)
    except ValueError:
        raise ValueError(f"{name}={value!r}: a number of days, or 'forever'") from None
    if days < 0:
        raise ValueError(f"{name}={value!r}: a number of days, or 'forever'")
    return days or None
