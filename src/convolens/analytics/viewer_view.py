"""The analytics as keys that may not read conversation text (viewers) see them.

A viewer gets aggregates: counts, rates, sentiment, and the names of values that come
from configuration (intents of the taxonomy, tracker and signal names, channels, queues,
agents, resolution statuses, campaigns). Some dimensions' values are words taken from
the conversations themselves: a topic is a conversation's top keyphrase, a keyphrase is
one, a cluster is labelled with its statements' c-TF-IDF phrases. Any of those can be a
customer's name, an order number or a phrase only one conversation holds, so a viewer
gets them as opaque names instead: "topic 3" (the third most common topic), "keyphrase
12", "cluster k-1f18af85373f" (the cluster's own id, stable across refits). The same
name means the same value in every response, and a viewer can ask about a value by its
name (`OpaqueNames.value`), never by its words: asking "is 'layoffs' a topic?" would
make the counts an oracle for what conversations say.

Beyond the values, a viewer's copy drops what points at single conversations (spike and
lift evidence) and the text of clusters (phrases, central statement, examples) and of
the keyphrase topic tree. The functions here shape copies; the analytics themselves are
computed once, by the same code for every role.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

from convolens.analytics.before_after import BeforeAfter
from convolens.analytics.business_marts import FrictionRow, IssueValue, LiftResult
from convolens.analytics.cluster_store import ClusterSummary, current_run_id
from convolens.analytics.spikes import SpikeReport
from convolens.analytics.topics import TopicNode
from convolens.analytics.trends import TimelineAnnotation, VolumeTable
from convolens.store.warehouse import Warehouse

__all__ = [
    "TEXT_DIMENSIONS",
    "OpaqueNames",
    "before_after",
    "clusters",
    "issue_rows",
    "lift",
    "renamed_annotations",
    "spike_report",
    "topic_tree",
    "volume_table",
]

# dimension -> the SQL of each current conversation's value(s), over `labels_current l`.
# The same expressions as trends.py and business_marts.py use for these dimensions.
_LABELLED: dict[str, tuple[str, str]] = {
    "topic": ("topic.conversation", "lower(trim(l.value->'phrases'->>0))"),
    "keyphrase": ("topic.keyphrase", "lower(trim(l.value->>'phrase'))"),
}
TEXT_DIMENSIONS = frozenset({*_LABELLED, "cluster"})
Issue = TypeVar("Issue", IssueValue, FrictionRow)


class OpaqueNames:
    """Text-derived values <-> the opaque names a viewer sees, per dimension.

    Topics and keyphrases are numbered by how many current conversations have them (most
    first; ties broken by a hash of the value, so the numbering says nothing of the
    words); clusters are named by their id in the current run. Each dimension's table is
    read once, when first needed.
    """

    def __init__(self, warehouse: Warehouse) -> None:
        self._warehouse = warehouse
        self._names: dict[str, dict[str, str]] = {}

    def _table(self, dimension: str) -> dict[str, str]:
        if dimension not in self._names:
            self._names[dimension] = self._read(dimension)
        return self._names[dimension]

    def _read(self, dimension: str) -> dict[str, str]:
        if dimension == "cluster":
            run_id = current_run_id(self._warehouse)
            if run_id is None:
                return {}
            rows = self._warehouse.query(
                "SELECT label AS v, string_agg(cluster_id, '/' ORDER BY cluster_id) AS id "
                "FROM clusters WHERE run_id = ? GROUP BY label",
                [run_id],
            )
            return {r["v"]: f"cluster {r['id']}" for r in rows}
        label, expression = _LABELLED[dimension]
        rows = self._warehouse.query(
            f"SELECT {expression} AS v, count(DISTINCT l.conversation_id) AS n "
            f"FROM labels_current l WHERE l.label = ? GROUP BY 1 HAVING v IS NOT NULL "
            "ORDER BY n DESC, md5(v)",
            [label],
        )
        return {r["v"]: f"{dimension} {rank}" for rank, r in enumerate(rows, start=1)}

    def name(self, dimension: str | None, value: str) -> str:
        """What a viewer sees for `value` of `dimension` (the value itself when it is not
        taken from text)."""
        if dimension not in TEXT_DIMENSIONS:
            return value
        return self._table(str(dimension)).get(value, f"{dimension} (unlisted)")

    def value(self, dimension: str | None, name: str) -> str:
        """The value behind a name a viewer gives; a ValueError for anything else,
        words included, without saying whether such words occur."""
        if dimension not in TEXT_DIMENSIONS:
            return name
        for value, shown in self._table(str(dimension)).items():
            if shown == name:
                return value
        # The name is not repeated: it may be the words themselves, echoed into logs.
        raise ValueError(
            f"unknown {dimension} name: viewer keys name {dimension}s as the trends show "
            f"them (e.g. '{dimension} 1'), not by their words"
        )


def renamed_annotations(
    notes: Sequence[TimelineAnnotation], names: OpaqueNames
) -> list[TimelineAnnotation]:
    """Annotations with the value they watch renamed (their label and description are
    the operator's words, not a conversation's)."""
    return [
        n.model_copy(update={"value": names.name(n.dimension, n.value)})
        if n.dimension is not None and n.value is not None
        else n
        for n in notes
    ]


def _renamed(text: str, old: str, new: str) -> str:
    """`text` that starts with `old` (a headline, a summary), starting with `new` instead."""
    return new + text[len(old) :] if text.startswith(old) else new


def volume_table(table: VolumeTable, names: OpaqueNames) -> VolumeTable:
    """Trends with text-derived values renamed."""
    points = [p.model_copy(update={"value": names.name(table.dimension, p.value)})
              for p in table.points]  # fmt: skip
    notes = renamed_annotations(table.annotations, names)
    return table.model_copy(update={"points": points, "annotations": notes})


def spike_report(report: SpikeReport | None, names: OpaqueNames) -> SpikeReport | None:
    """Spikes with values (and headlines) renamed and no evidence conversation ids."""
    if report is None:
        return None
    found = []
    for s in report.spikes:
        shown = names.name(report.dimension, s.value)
        headline = _renamed(s.headline, s.value, shown)
        found.append(s.model_copy(update={"value": shown, "headline": headline, "evidence": []}))
    notes = renamed_annotations(report.annotations, names)
    return report.model_copy(update={"spikes": found, "annotations": notes})


def before_after(result: BeforeAfter, names: OpaqueNames) -> BeforeAfter:
    """A before/after comparison with its value (in the summary too) renamed."""
    dim = result.dimension.value
    shown = names.name(dim, result.value)
    summary = _renamed(result.summary, f"{dim} {result.value}:", f"{dim} {shown}:")
    annotation = result.annotation
    if annotation is not None:
        annotation = renamed_annotations([annotation], names)[0]
    return result.model_copy(update={"value": shown, "summary": summary, "annotation": annotation})


def lift(result: LiftResult, names: OpaqueNames) -> LiftResult:
    """A lift with its value renamed and without the accounts list, which names each
    account's first conversation as evidence."""
    return result.model_copy(
        update={"value": names.name(result.dimension, result.value), "accounts": []}
    )


def issue_rows(rows: Sequence[Issue], dimension: str, names: OpaqueNames) -> list[Issue]:
    """Issues by value or friction rows with their issue renamed."""
    return [r.model_copy(update={"issue": names.name(dimension, r.issue)}) for r in rows]


def clusters(found: Sequence[ClusterSummary]) -> list[ClusterSummary]:
    """Clusters named by their id, without phrases, central statement or examples."""
    return [
        c.model_copy(
            update={
                "label": f"cluster {c.cluster_id}",
                "phrases": [],
                "representative": "",
                "examples": [],
            }
        )
        for c in found
    ]


def topic_tree(groups: Sequence[TopicNode]) -> list[TopicNode]:
    """The keyphrase topic hierarchy as themes and topics numbered by size, without
    phrases or conversation ids. Its own ids are hashes of the phrases, which a viewer
    could test guesses against, so they are replaced too."""
    out = []
    for g, group in enumerate(groups, start=1):
        children = [
            child.model_copy(
                update={
                    "topic_id": f"t-{g}.{t}",
                    "label": f"theme {g}.{t}",
                    "phrases": [],
                    "conversation_ids": [],
                }
            )
            for t, child in enumerate(group.children, start=1)
        ]
        update = {"topic_id": f"g-{g}", "label": f"theme {g}", "phrases": [],
                  "conversation_ids": [], "children": children}  # fmt: skip
        out.append(group.model_copy(update=update))
    return out
