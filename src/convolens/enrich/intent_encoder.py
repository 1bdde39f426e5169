"""A taxonomy's fine-tuned intent model at run time: its int8 ONNX encoder and its head.

`convolens taxonomy train --fine-tune` (`intent_finetune.py`) writes one folder per
taxonomy version into the model cache, $CONVOLENS_CACHE/intents/<taxonomy_version>.finetuned/:
`model.int8.onnx` (the fine-tuned MiniLM: mean-pooled vector and the intent head's
probabilities), `tokenizer.json`, `labels.json` (the layout `ConversationEncoder` reads,
plus the taxonomy version) and `intents.npz` (the `IntentModel` trained on that encoder's
vectors, with its calibrated out-of-scope threshold). Nothing here imports torch: loading
and running it is onnxruntime and tokenizers only.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from convolens.enrich.intent_model import IntentModel, IntentModelMismatchError
from convolens.enrich.onnx_encoder import cache_dir

__all__ = [
    "BUNDLE_FILES",
    "HEAD",
    "FineTunedEncoder",
    "fine_tuned_dir",
    "load_fine_tuned",
]

HEAD = "intent"
BUNDLE_FILES = ("model.int8.onnx", "tokenizer.json", "labels.json", "intents.npz")


def fine_tuned_dir(taxonomy_version: str) -> Path:
    """Where the fine-tuned model of this taxonomy version lives (the version is the key)."""
    safe = re.sub(r"[^A-Za-z0-9_.+\-]", "_", taxonomy_version)
    return cache_dir() / "intents" / f"{safe}.finetuned"


class FineTunedEncoder:
    """The fine-tuned encoder as a `TextEmbedder`: `embed` gives unit-length rows, as the
    shared MiniLM does, so the intent classifier reads it the same way."""

    def __init__(self, folder: str | Path, *, threads: int | None = None) -> None:
        from convolens.enrich.conversation_encoder import ConversationEncoder

        self.folder = Path(folder)
        # The conversation encoder's runtime reads this layout as it is: one more head.
        self._encoder = ConversationEncoder(self.folder, threads=threads)
        meta: dict[str, Any] = self._encoder.metadata
        self.model_id: str = meta["model_id"]
        self.taxonomy_version: str = str(meta.get("taxonomy_version", ""))
        self.classes: tuple[str, ...] = self._encoder.labels[HEAD]
        self.dimension = int(meta.get("dimension", 384))
        self.metadata = meta

    def encode(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """(unit-length vectors, the head's probabilities over `classes`), rows as given."""
        if not texts:
            return np.zeros((0, self.dimension), np.float32), np.zeros((0, len(self.classes)))
        vectors, heads = self._encoder.encode(list(texts))
        norms = np.linalg.norm(vectors, axis=1, keepdims=True)
        unit: np.ndarray = (vectors / np.where(norms == 0, 1, norms)).astype(np.float32)
        return unit, heads[HEAD]

    def embed(self, texts: list[str]) -> np.ndarray:
        return self.encode(texts)[0]


def load_fine_tuned(
    folder: str | Path, taxonomy_version: str | None = None, *, threads: int | None = None
) -> IntentModel:
    """The fine-tuned intent model in `folder`, its encoder attached. Refuses one trained
    for another taxonomy version (`IntentModelMismatchError`) and an incomplete folder
    (`FileNotFoundError`)."""
    folder = Path(folder)
    missing = [name for name in BUNDLE_FILES if not (folder / name).exists()]
    if missing:
        raise FileNotFoundError(
            f"{folder}: not a fine-tuned intent model (missing {', '.join(missing)}); "
            "train one with: convolens taxonomy train TAXONOMY --fine-tune"
        )
    meta = json.loads((folder / "labels.json").read_text(encoding="utf-8"))
    trained_for = str(meta.get("taxonomy_version", ""))
    if taxonomy_version is not None and trained_for != taxonomy_version:
        raise IntentModelMismatchError(
            f"{folder.name}: fine-tuned for taxonomy version {trained_for!r}, not "
            f"{taxonomy_version!r}: fine-tune it for this taxonomy "
            "(convolens taxonomy train TAXONOMY --fine-tune)"
        )
    encoder = FineTunedEncoder(folder, threads=threads)
    model = IntentModel.load(
        folder / "intents.npz", taxonomy_version=taxonomy_version, embedder=encoder
    )
    if list(encoder.classes) != model.classes:
        raise IntentModelMismatchError(
            f"{folder.name}: the encoder's head and the classifier list different classes"
        )
    return model
