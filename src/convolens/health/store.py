"""Reading data health back: findings (filter, export as CSV or JSON), each source's
expected fields and fill rates as learnt from its recent runs, and runs' volumes.

The API, the CLI (`convolens health`) and the dashboard's Data health page all call these.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from typing import Any, Literal

from convolens.health.intake_checks import HealthFinding, HealthSettings
from convolens.health.models import ExpectedField, RunVolume, SourceHealth
from convolens.store.warehouse import Warehouse

__all__ = [
    "ExpectedField",
    "SourceHealth",
    "export_findings",
    "list_findings",
    "source_health",
]

ExportFormat = Literal["json", "csv"]
_COLUMNS = (
    "finding_id", "run_id", "source", "check_name", "field", "observed", "expected", "score",
    "message", "created_at",
)  # fmt: skip


def list_findings(
    wh: Warehouse,
    *,
    run_id: str | None = None,
    source: str | None = None,
    check: str | None = None,
    limit: int = 500,
) -> list[HealthFinding]:
    """Newest first."""
    sql = f"SELECT {', '.join(_COLUMNS)} FROM data_health_findings WHERE true"
    params: list[Any] = []
    for column, value in (("run_id", run_id), ("source", source), ("check_name", check)):
        if value is not None:
            sql += f" AND {column} = ?"
            params.append(value)
    sql += " ORDER BY created_at DESC, source, check_name, field LIMIT ?"
    params.append(max(0, int(limit)))
    return [HealthFinding(**row) for row in wh.query(sql, params)]


def export_findings(findings: list[HealthFinding], fmt: ExportFormat) -> str:
    rows = [f.model_dump(mode="json") for f in findings]
    if fmt == "json":
        return json.dumps(rows, indent=2, ensure_ascii=False)
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(_COLUMNS), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        # Cells a spreadsheet would run as a formula are quoted as text.
        writer.writerow(
            {k: "'" + v if isinstance(v, str) and v[:1] in "=+-@" else v for k, v in row.items()}
        )
    return out.getvalue()


def source_health(
    wh: Warehouse, settings: HealthSettings | None = None, *, runs: int = 30
) -> list[SourceHealth]:
    """Per source: expected fields (presence and fill over its last `history_runs` runs,
    as the checks learn them) and the volume of its last `runs` runs."""
    settings = settings or HealthSettings()
    rows = wh.query(
        "SELECT p.*, (SELECT count(*) FROM data_health_findings f WHERE f.run_id = p.run_id "
        "AND f.source = p.source) AS findings, row_number() OVER (PARTITION BY source "
        "ORDER BY created_at DESC) AS age FROM intake_profiles p ORDER BY source, created_at"
    )
    by_source: dict[str, list[dict[str, Any]]] = {}
    for row in rows:
        by_source.setdefault(row["source"], []).append(row)
    out = []
    for source, history in sorted(by_source.items()):
        recent = [r for r in history if r["age"] <= settings.history_runs]
        total = sum(r["records"] for r in recent) or 1
        present: Counter[str] = Counter()
        filled: Counter[str] = Counter()
        types: dict[str, Counter[str]] = {}
        fill: Counter[str] = Counter()
        languages: Counter[str] = Counter()
        for r in recent:
            for path, info in json.loads(r["fields"]).items():
                kinds = Counter({k: int(v) for k, v in info["types"].items()})
                present[path] += min(r["records"], sum(kinds.values()))
                filled[path] += int(info["filled"])
                types.setdefault(path, Counter()).update(kinds)
            fill.update({k: int(v) for k, v in json.loads(r["fill"]).items()})
            languages.update({k: int(v) for k, v in json.loads(r["languages"]).items()})
        expected = [
            ExpectedField(
                field=f"canonical:{k}", presence=1.0, fill_rate=round(v / total, 4), canonical=True
            )
            for k, v in sorted(fill.items())
        ]
        expected += [
            ExpectedField(
                field=path,
                presence=round(present[path] / total, 4),
                fill_rate=round(filled[path] / total, 4),
                type=_usual(types[path]),
            )
            for path in sorted(present)
            # Half the records and more: a field slipping below "expected" is still shown.
            if present[path] / total >= 0.5
        ]
        out.append(
            SourceHealth(
                source=source,
                runs=len(history),
                records=sum(r["records"] for r in history),
                last_run_at=history[-1]["created_at"],
                expected=expected,
                languages=dict(languages.most_common()),
                volumes=[
                    RunVolume(
                        run_id=r["run_id"],
                        created_at=r["created_at"],
                        records=r["records"],
                        duplicates=r["duplicates"],
                        findings=r["findings"],
                    )
                    for r in history[-runs:]
                ],
            )
        )
    return out


def _usual(types: Counter[str]) -> str | None:
    typed = Counter({k: v for k, v in types.items() if k != "null"})
    return typed.most_common(1)[0][0] if typed else None
