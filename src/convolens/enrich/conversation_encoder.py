"""The conversation encoder: one pass per utterance, read by several components.

A fine-tuned all-MiniLM-L6-v2 with three heads (sentiment, emotion, dialogue act), trained
by `training/encoder/train.py` and shipped as int8 ONNX with its tokenizer under
`enrich/data/conversation_encoder/` (see training/encoder/MODEL_CARD.md). `encoder_pass`
runs it once over every utterance of a batch of documents and leaves the result in each
`Doc.cache`, so sentiment, emotion, dialogue acts (and anything else that wants the
pooled vector) read the same pass instead of encoding the text again.
"""

from __future__ import annotations

import functools
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from convolens.enrich.base import Doc

__all__ = [
    "ARTEFACT_DIR",
    "CACHE_KEY",
    "ConversationEncoder",
    "EncoderPass",
    "encoder_pass",
    "shared_encoder",
]

ARTEFACT_DIR = Path(__file__).parent / "data" / "conversation_encoder"
CACHE_KEY = "conversation_encoder"
BATCH_SIZE = 64


@dataclass(frozen=True)
class EncoderPass:
    """One document's encoder outputs, a row per utterance (zeros where text is empty).

    `heads[name]` holds each head's probabilities, columns in `labels[name]` order."""

    model_id: str
    text_key: int
    vectors: np.ndarray
    heads: dict[str, np.ndarray]
    labels: dict[str, tuple[str, ...]]

    def probabilities(self, head: str, row: int) -> dict[str, float]:
        return {
            name: round(float(p), 4)
            for name, p in zip(self.labels[head], self.heads[head][row], strict=True)
        }

    def top(self, head: str, row: int) -> tuple[str, float]:
        column = int(self.heads[head][row].argmax())
        return self.labels[head][column], float(self.heads[head][row, column])

    def share(self, head: str, row: int, prefix: str) -> float:
        """Summed probability of the labels starting with `prefix` ("question_")."""
        columns = [i for i, n in enumerate(self.labels[head]) if n.startswith(prefix)]
        return float(self.heads[head][row, columns].sum())


def _threads_given() -> int | None:
    """The CPU threads this process was given, if it was: OMP_NUM_THREADS, which Ray sets
    to an actor's CPUs and the benchmarks pin to 1. Without it onnxruntime takes every core,
    and two one-CPU actors on one machine would each run a pool as wide as the machine."""
    value = os.environ.get("OMP_NUM_THREADS", "").strip()
    return int(value) if value.isdigit() and int(value) > 0 else None


class ConversationEncoder:
    """Loads the int8 ONNX encoder and its tokenizer once; `encode` labels texts."""

    def __init__(self, artefact: Path | str = ARTEFACT_DIR, *, threads: int | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        folder = Path(artefact)
        model = folder / "model.int8.onnx"
        if not model.exists():
            raise FileNotFoundError(
                f"{model}: the conversation encoder artefact is missing; "
                "reinstall convolens or run training/encoder/export.py"
            )
        meta: dict[str, Any] = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
        self.model_id: str = meta["model_id"]
        self.labels: dict[str, tuple[str, ...]] = {k: tuple(v) for k, v in meta["heads"].items()}
        self.outputs: list[str] = list(meta["outputs"])
        self.metadata = meta
        # Heads trained on class-balanced data over-predict rare classes; labels.json may
        # carry per-class factors that move their probabilities towards the natural prior.
        correction = meta.get("prior_correction") or {}
        self.prior = {
            head: np.asarray(correction[head], dtype=np.float32)
            for head in self.labels
            if head in correction
        }
        self.tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        self.tokenizer.enable_truncation(max_length=int(meta["max_length"]))
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
        options = ort.SessionOptions()
        threads = threads or _threads_given()
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """(vectors, {head: probabilities}) for `texts`, rows in the order given."""
        width = 0
        vectors = np.zeros((len(texts), 0), dtype=np.float32)
        heads = {
            name: np.zeros((len(texts), len(v)), np.float32) for name, v in self.labels.items()
        }
        # Length-sorted batches pad least.
        order = np.argsort([len(t) for t in texts], kind="stable")
        for start in range(0, len(texts), BATCH_SIZE):
            index = order[start : start + BATCH_SIZE]
            encoded = self.tokenizer.encode_batch([texts[i] for i in index])
            feed = {
                "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
                "attention_mask": np.array([e.attention_mask for e in encoded], dtype=np.int64),
            }
            results = dict(zip(self.outputs, self.session.run(None, feed), strict=True))
            if not width:
                width = results["vector"].shape[1]
                vectors = np.zeros((len(texts), width), dtype=np.float32)
            vectors[index] = results["vector"]
            for name in heads:
                probs = results[name]
                if name in self.prior:
                    probs = probs * self.prior[name]
                    probs = probs / probs.sum(axis=1, keepdims=True)
                heads[name][index] = probs
        return vectors, heads


@functools.lru_cache(maxsize=4)
def shared_encoder(artefact: str | None = None) -> ConversationEncoder:
    """One loaded encoder per process and artefact, shared by every component."""
    return ConversationEncoder(artefact or ARTEFACT_DIR)


def encoder_pass(batch: list[Doc], encoder: ConversationEncoder) -> list[EncoderPass]:
    """Each document's encoder outputs, computed once per document and model.

    Documents without a cached pass for this model are encoded together (one batch of
    utterances across documents); the result stays in `Doc.cache` for later components."""
    missing = [d for d in batch if _cached(d, encoder.model_id) is None]
    texts: list[str] = []
    spans: list[tuple[Doc, list[int]]] = []
    for doc in missing:
        rows = [i for i, u in enumerate(doc.conversation.utterances) if u.text.strip()]
        spans.append((doc, rows))
        texts.extend(doc.conversation.utterances[i].text for i in rows)
    if spans:
        vectors, heads = encoder.encode(texts) if texts else (np.zeros((0, 384)), {})
        offset = 0
        for doc, rows in spans:
            n = len(doc.conversation.utterances)
            width = vectors.shape[1] if vectors.size else 384
            doc_vectors = np.zeros((n, width), dtype=np.float32)
            doc_heads = {k: np.zeros((n, len(v)), np.float32) for k, v in encoder.labels.items()}
            if rows:
                doc_vectors[rows] = vectors[offset : offset + len(rows)]
                for name in doc_heads:
                    doc_heads[name][rows] = heads[name][offset : offset + len(rows)]
            offset += len(rows)
            doc.cache[CACHE_KEY] = EncoderPass(
                encoder.model_id, _text_key(doc), doc_vectors, doc_heads, encoder.labels
            )
    out = []
    for doc in batch:
        found = _cached(doc, encoder.model_id)
        assert found is not None
        out.append(found)
    return out


def _cached(doc: Doc, model_id: str) -> EncoderPass | None:
    found = doc.cache.get(CACHE_KEY)
    # A redacting component may have rewritten the text since: then the pass is stale.
    fresh = (
        isinstance(found, EncoderPass)
        and found.model_id == model_id
        and found.text_key == _text_key(doc)
    )
    return found if fresh else None


def _text_key(doc: Doc) -> int:
    return hash(tuple(u.text for u in doc.conversation.utterances))
