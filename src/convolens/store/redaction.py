"""Stores text a component rewrote (PII redaction) in place in the normalised layer.

Redaction is the one change made to stored conversation rows rather than written as a new
version: a new version would make the unredacted text the previous version, still there.
The conversation's `content_hash` is left as ingest computed it, so re-ingesting the same
source is still recognised as unchanged and never brings the original text back. The
verbatim source stays in `raw_interactions` for audit and replay.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pyarrow as pa

from convolens.model import Conversation
from convolens.store.warehouse import Warehouse

__all__ = ["TextRewrite", "store_rewrites"]

TextRewrite = tuple[str, int, Conversation]
"""(conversation id, version, the conversation with its new texts)."""

_UTTERANCES = pa.schema(
    [("conversation_id", pa.string()), ("version", pa.int32()), ("seq", pa.int32()),
     ("text", pa.string())]
)  # fmt: skip
_WORDS = pa.schema(
    [("conversation_id", pa.string()), ("version", pa.int32()), ("utterance_id", pa.string()),
     ("word_index", pa.int32()), ("text", pa.string())]
)  # fmt: skip


def store_rewrites(warehouse: Warehouse, rewrites: Sequence[TextRewrite]) -> int:
    """Write the new utterance texts, word texts and subjects; returns utterances updated.

    Call inside the caller's transaction so the labels and the text they rest on land
    together.
    """
    utterances: dict[str, list[Any]] = {name: [] for name in _UTTERANCES.names}
    words: dict[str, list[Any]] = {name: [] for name in _WORDS.names}
    subjects: list[tuple[str | None, str, int]] = []
    for cid, version, conversation in rewrites:
        subjects.append((conversation.subject, cid, version))
        for seq, utterance in enumerate(conversation.utterances):
            Warehouse.append_row(
                utterances, conversation_id=cid, version=version, seq=seq, text=utterance.text
            )
            for index, word in enumerate(utterance.words or []):
                Warehouse.append_row(
                    words,
                    conversation_id=cid,
                    version=version,
                    utterance_id=f"{cid}:{seq}",
                    word_index=index,
                    text=word.text,
                )
    if not rewrites:
        return 0
    con = warehouse.con
    con.register("_new_utterance_text", pa.table(utterances, schema=_UTTERANCES))
    con.register("_new_word_text", pa.table(words, schema=_WORDS))
    try:
        # Only rows whose text differs are touched.
        changed = con.execute(
            "UPDATE utterances u SET text = n.text FROM _new_utterance_text n "
            "WHERE u.conversation_id = n.conversation_id AND u.version = n.version "
            "AND u.seq = n.seq AND u.text IS DISTINCT FROM n.text"
        ).fetchone()
        con.execute(
            "UPDATE words w SET text = n.text FROM _new_word_text n "
            "WHERE w.conversation_id = n.conversation_id AND w.version = n.version "
            "AND w.utterance_id = n.utterance_id AND w.word_index = n.word_index "
            "AND w.text IS DISTINCT FROM n.text"
        )
    finally:
        con.unregister("_new_utterance_text")
        con.unregister("_new_word_text")
    con.executemany(
        "UPDATE conversations SET subject = ? WHERE conversation_id = ? AND version = ? "
        "AND subject IS DISTINCT FROM ?",
        [(subject, cid, version, subject) for subject, cid, version in subjects],
    )
    return int(changed[0]) if changed else 0
