"""Intake checks: one run's source profiles against that source's history.

History is the previous `HealthSettings.history_runs` profiles of the same source. Expected
fields and fill rates are learnt from it (record-weighted), so nobody declares a schema:
a field present in nearly every record before is expected, and so is its type and fill.
Each check below returns findings; a check that needs history is silent until the source
has `min_history` runs, and every check but PII needs `min_records` records in the run
(one conversation missing an agent says little; a hundred of them say a lot).

Findings name fields, counts and entity types, never values: they are shown to viewers.
"""

from __future__ import annotations

import json
import logging
import math
import statistics
import uuid
from collections import Counter
from typing import Any

from pydantic import BaseModel, Field

from convolens.health.intake import SourceProfile
from convolens.health.models import HealthFinding
from convolens.store.warehouse import Warehouse, now_utc

__all__ = ["CHECKS", "HealthFinding", "HealthSettings", "assess_run", "binomial_cdf", "psi"]

log = logging.getLogger("convolens.health")

CHECKS = (
    "schema_new_field",
    "schema_missing_field",
    "schema_retyped_field",
    "fill_rate_drop",
    "volume_anomaly",
    "language_mix",
    "duplicate_surge",
    "pii_in_field",
)
# Entity types worth a finding outside the fields meant for people.
_PII_TYPES = frozenset(
    {"EMAIL_ADDRESS", "PHONE_NUMBER", "CREDIT_CARD", "IBAN_CODE", "US_SSN", "IP_ADDRESS",
     "PERSON", "STREET_ADDRESS", "DATE_OF_BIRTH"}
)  # fmt: skip
_MAX_FIELD_FINDINGS = 25


class HealthSettings(BaseModel):
    """Thresholds of the intake checks (defaults suit batch exports of tens of records)."""

    history_runs: int = Field(default=10, ge=1, le=500)
    min_history: int = Field(default=2, ge=1)
    min_records: int = Field(default=3, ge=1)
    expected_presence: float = Field(default=0.9, gt=0, le=1)
    fill_drop: float = Field(default=0.25, gt=0, le=1)
    # A drop must also be unlikely by chance: binomial tail of the run's fill under the
    # (smoothed) historical rate below this. One empty field in three records is not news.
    fill_p: float = Field(default=0.01, gt=0, lt=1)
    new_field_share: float = Field(default=0.5, gt=0, le=1)
    min_language_records: int = Field(default=10, ge=1)
    volume_z: float = Field(default=3.5, gt=0)
    volume_ratio: float = Field(default=3.0, gt=1)
    language_psi: float = Field(default=0.2, gt=0)
    duplicate_rise: float = Field(default=0.3, gt=0, le=1)
    pii_min_score: float = Field(default=0.8, ge=0, le=1)


def psi(expected: dict[str, float], actual: dict[str, float], *, smoothing: float = 0.5) -> float:
    """Population stability index of two count maps over their joint keys.

    Each count gets `smoothing` added (Laplace-style): a value absent from one window then
    weighs by how much data says it is absent, instead of by an arbitrary floor that makes
    any small sample look like drift. `smoothing=0` is the textbook formula (shares floored
    at 1e-6)."""
    keys = set(expected) | set(actual)
    e_total = sum(expected.values()) + smoothing * len(keys) or 1.0
    a_total = sum(actual.values()) + smoothing * len(keys) or 1.0
    value = 0.0
    for key in keys:
        e = max((expected.get(key, 0.0) + smoothing) / e_total, 1e-6)
        a = max((actual.get(key, 0.0) + smoothing) / a_total, 1e-6)
        value += (a - e) * math.log(a / e)
    return value


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p), summed in log space (no scipy in a base install)."""
    if p <= 0.0:
        return 1.0
    if p >= 1.0:
        return 1.0 if k >= n else 0.0
    log_p, log_q = math.log(p), math.log1p(-p)
    total = 0.0
    for i in range(max(0, min(k, n)) + 1):
        log_term = (
            math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1)
            + i * log_p + (n - i) * log_q
        )  # fmt: skip
        total += math.exp(log_term)
    return min(1.0, total)


# -- history ----------------------------------------------------------------------------
class _History:
    def __init__(self, rows: list[dict[str, Any]]) -> None:
        self.runs = len(rows)
        self.records = [int(r["records"]) for r in rows]
        self.total = sum(self.records) or 1
        self.duplicate_shares = [r["duplicates"] / r["records"] for r in rows if r["records"]]
        self.present: Counter[str] = Counter()
        self.filled: Counter[str] = Counter()
        self.types: dict[str, Counter[str]] = {}
        self.fill: Counter[str] = Counter()
        self.languages: Counter[str] = Counter()
        for row in rows:
            for path, info in json.loads(row["fields"]).items():
                types = Counter({k: int(v) for k, v in info["types"].items()})
                # Records holding the path at all (a record counts once per type seen).
                self.present[path] += min(int(row["records"]), sum(types.values()))
                self.filled[path] += int(info["filled"])
                self.types.setdefault(path, Counter()).update(types)
            self.fill.update({k: int(v) for k, v in json.loads(row["fill"]).items()})
            self.languages.update({k: int(v) for k, v in json.loads(row["languages"]).items()})

    def presence(self, path: str) -> float:
        return self.present[path] / self.total


def _history(wh: Warehouse, source: str, run_id: str, limit: int) -> _History:
    rows = wh.query(
        "SELECT records, duplicates, fields, fill, languages FROM intake_profiles "
        "WHERE source = ? AND run_id <> ? ORDER BY created_at DESC LIMIT ?",
        [source, run_id, limit],
    )
    return _History(rows)


def _present(profile: SourceProfile, path: str) -> int:
    return min(profile.records, sum(profile.types.get(path, Counter()).values()))


# -- checks -----------------------------------------------------------------------------
def _schema(p: SourceProfile, h: _History, s: HealthSettings) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    if p.records < s.min_records:  # one conversation posted alone says little of a schema
        return found
    expected = {path for path in h.present if h.presence(path) >= s.expected_presence}
    missing = sorted(path for path in expected if _present(p, path) == 0)
    new = sorted(
        path
        for path in p.types
        if path not in h.present and _present(p, path) / p.records >= s.new_field_share
    )
    # Report a renamed subtree once, at its top: `agent_name` rather than it and its children.
    missing = [m for m in missing if not any(m.startswith(o + ".") for o in missing)]
    new = [n for n in new if not any(n.startswith(o + ".") for o in new)]
    for path in missing[:_MAX_FIELD_FINDINGS]:
        siblings = [n for n in new if n.rpartition(".")[0] == path.rpartition(".")[0]]
        hint = f"; new beside it: {', '.join(siblings[:3])}" if siblings else ""
        found.append(_f("schema_missing_field", path, 0.0, h.presence(path), 1.0,
                        f"field '{path}' is missing from all {p.records} records (it was in "
                        f"{h.presence(path):.0%} before){hint}"))  # fmt: skip
    for path in new[:_MAX_FIELD_FINDINGS]:
        share = _present(p, path) / p.records
        found.append(_f("schema_new_field", path, share, 0.0, share,
                        f"new field '{path}' in {_present(p, path)} of {p.records} records "
                        f"(never seen in the last {h.runs} runs)"))  # fmt: skip
    for path, types in p.types.items():
        before = h.types.get(path)
        typed_before = Counter({k: v for k, v in (before or {}).items() if k != "null"})
        typed_now = Counter({k: v for k, v in types.items() if k != "null"})
        if not typed_before or not typed_now:
            continue
        old, old_n = typed_before.most_common(1)[0]
        new_type, new_n = typed_now.most_common(1)[0]
        if (
            new_type != old
            and old_n / sum(typed_before.values()) >= s.expected_presence
            and new_n / sum(typed_now.values()) >= 0.5
        ):
            found.append(_f("schema_retyped_field", path, None, None, 1.0,
                            f"field '{path}' is now {new_type} in {new_n} of {p.records} records "
                            f"(it was {old})"))  # fmt: skip
    return found


def _fill(p: SourceProfile, h: _History, s: HealthSettings) -> list[dict[str, Any]]:
    if p.records < s.min_records:
        return []
    found = []
    counts = [(f"canonical:{k}", p.fill[k], h.fill[k]) for k in h.fill]
    counts += [
        (path, p.filled[path], h.filled[path])
        for path in h.filled
        if _present(p, path) and h.presence(path) >= s.expected_presence
    ]
    for name, filled_now, filled_before in counts:
        now, before = filled_now / p.records, filled_before / h.total
        smoothed = (filled_before + 1) / (h.total + 2)
        chance = binomial_cdf(filled_now, p.records, smoothed)
        if before - now >= s.fill_drop and chance < s.fill_p:
            what = (
                f"conversations with {name.removeprefix('canonical:')} (any field or role)"
                if name.startswith("canonical:")
                else f"field '{name}'"
            )
            found.append(_f("fill_rate_drop", name, now, before, before - now,
                            f"{what} filled in {now:.0%} of {p.records} records (was "
                            f"{before:.0%})"))  # fmt: skip
    return found


def _volume(p: SourceProfile, h: _History, s: HealthSettings) -> list[dict[str, Any]]:
    if h.runs < max(3, s.min_history):
        return []
    median = statistics.median(h.records)
    mad = statistics.median(abs(x - median) for x in h.records)
    ratio = p.records / median if median else math.inf
    z = 0.6745 * (p.records - median) / mad if mad else math.copysign(math.inf, ratio - 1)
    if abs(z) >= s.volume_z and (ratio >= s.volume_ratio or ratio <= 1 / s.volume_ratio):
        word = "more" if ratio > 1 else "fewer"
        return [_f("volume_anomaly", None, p.records, median, ratio,
                   f"{p.records} records, {word} than usual (median {median:g} over the last "
                   f"{h.runs} runs; ratio {ratio:.2g})")]  # fmt: skip
    return []


def _languages(p: SourceProfile, h: _History, s: HealthSettings) -> list[dict[str, Any]]:
    least = max(s.min_records, s.min_language_records)
    if sum(p.languages.values()) < least or sum(h.languages.values()) < least:
        return []
    value = psi(dict(h.languages), dict(p.languages))
    if value < s.language_psi:
        return []
    total = sum(p.languages.values())
    now = ", ".join(f"{k} {v / total:.0%}" for k, v in p.languages.most_common(3))
    before_total = sum(h.languages.values())
    before = ", ".join(f"{k} {v / before_total:.0%}" for k, v in h.languages.most_common(3))
    return [_f("language_mix", None, None, None, value,
               f"language mix changed (PSI {value:.2f}): {now}; before {before}")]  # fmt: skip


def _duplicates(p: SourceProfile, h: _History, s: HealthSettings) -> list[dict[str, Any]]:
    if p.records < s.min_records or not h.duplicate_shares:
        return []
    share, usual = p.duplicates / p.records, statistics.median(h.duplicate_shares)
    if share - usual >= s.duplicate_rise:
        return [_f("duplicate_surge", None, share, usual, share - usual,
                   f"{p.duplicates} of {p.records} records were already stored or repeated "
                   f"({share:.0%}; usually {usual:.0%})")]  # fmt: skip
    return []


def _pii(p: SourceProfile, s: HealthSettings) -> list[dict[str, Any]]:
    values = {path: sorted(v) for path, v in p.pii_values.items() if v and path not in p.declared}
    if not values:
        return []
    try:
        from convolens.enrich.pii import PiiConfig
        from convolens.enrich.pii.detect import Detector
    except ImportError:  # the enrich extra is not installed: no PII check
        return []
    detector = _detector(Detector, PiiConfig)
    found = []
    for path, texts in sorted(values.items()):
        kinds: Counter[str] = Counter()
        for findings in detector.find(texts):
            types = {f.entity_type for f in findings if f.score >= s.pii_min_score}
            kinds.update(types & _PII_TYPES)
        if kinds:
            what = ", ".join(f"{k} ({n})" for k, n in kinds.most_common())
            count = sum(kinds.values())
            message = f"field '{path}' is not a text or person field but holds {what}"
            found.append(_f("pii_in_field", path, count, 0.0, float(count), message))
    return found


_DETECTOR: list[Any] = []


def _detector(detector_cls: Any, config_cls: Any) -> Any:
    # One detector per process (its NER model takes seconds to load).
    if not _DETECTOR:
        _DETECTOR.append(detector_cls(config_cls()))
    return _DETECTOR[0]


def _f(
    check: str,
    field: str | None,
    observed: float | None,
    expected: float | None,
    score: float | None,
    message: str,
) -> dict[str, Any]:
    def clean(x: float | None) -> float | None:
        return None if x is None or not math.isfinite(x) else round(float(x), 4)

    return {
        "check_name": check,
        "field": field,
        "observed": clean(observed),
        "expected": clean(expected),
        # An infinite ratio (nothing before) is stored as a large finite score.
        "score": clean(min(score, 1e9)) if score is not None else None,
        "message": message,
    }


# -- the run ------------------------------------------------------------------------------
def _count_duplicates(wh: Warehouse, profile: SourceProfile, run_id: str) -> int:
    """Repeats within the run, plus conversations stored before that this run left as they
    were (no new version): the same content sent again."""
    ids = profile.ids
    unique = sorted(set(ids))
    rows = wh.query(
        "SELECT conversation_id, bool_or(run_id = ?) AS changed FROM conversations "
        "WHERE list_contains(?, conversation_id) GROUP BY conversation_id "
        "HAVING bool_or(run_id <> ?)",
        [run_id, unique, run_id],
    )
    return len(ids) - len(unique) + sum(1 for r in rows if not r["changed"])


def assess_run(
    wh: Warehouse,
    run_id: str,
    profiles: list[SourceProfile],
    settings: HealthSettings | None = None,
) -> list[HealthFinding]:
    """Store the profiles of `run_id` and the findings against each source's history."""
    settings = settings or HealthSettings()
    at = now_utc()
    findings: list[HealthFinding] = []
    for profile in profiles:
        profile.duplicates = _count_duplicates(wh, profile, run_id)
        history = _history(wh, profile.source, run_id, settings.history_runs)
        rows: list[dict[str, Any]] = []
        if history.runs >= settings.min_history:
            for check in (_schema, _fill, _volume, _languages, _duplicates):
                rows += check(profile, history, settings)
        rows += _pii(profile, settings)
        wh.con.execute(
            "INSERT INTO intake_profiles VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [run_id, profile.source, at, profile.records, profile.duplicates,
             json.dumps(profile.fields_json()), json.dumps(dict(profile.fill)),
             json.dumps(dict(profile.languages))],
        )  # fmt: skip
        for row in rows:
            findings.append(
                HealthFinding(
                    finding_id=f"dh_{uuid.uuid4().hex[:16]}",
                    run_id=run_id,
                    source=profile.source,
                    created_at=at,
                    **row,
                )
            )
    if findings:
        wh.con.executemany(
            "INSERT INTO data_health_findings VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [[f.finding_id, f.run_id, f.source, f.check_name, f.field, f.observed, f.expected,
              f.score, f.message, f.created_at] for f in findings],
        )  # fmt: skip
        _alert(wh, findings)
    return findings


def _alert(wh: Warehouse, findings: list[HealthFinding]) -> None:
    try:
        from convolens.service.webhooks import enqueue
    except ImportError:  # the service extra is not installed: findings are stored only
        return
    for finding in findings:
        payload = finding.model_dump(mode="json", exclude={"created_at"})
        payload["check"] = payload.pop("check_name")
        try:
            enqueue(wh, "data_health", payload)
        except Exception:  # the findings are stored; a failed alert is logged, not raised
            log.warning("data health: could not queue the webhook alert", exc_info=True)
            return
