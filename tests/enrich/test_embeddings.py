"""The ONNX Runtime path gives the PyTorch model's vectors (what the artefacts were trained on)."""

from __future__ import annotations

import numpy as np
import pytest

from convolens.enrich.embeddings import SentenceEmbedder

TEXTS = [
    "I was charged twice for my subscription this month.",
    "ok",
    "",
    "The app crashes every time I open a shared dashboard, even after updating to 4.12.0 "
    "this morning on my iPhone; my colleagues on Android see the same thing.",
]


def test_onnx_matches_torch(embedder: SentenceEmbedder) -> None:
    assert embedder._onnx is not None, "onnxruntime is installed: the default must use it"
    reference = SentenceEmbedder(backend="torch")
    fast, slow = SentenceEmbedder(backend="onnx").embed(TEXTS), reference.embed(TEXTS)
    assert fast.shape == slow.shape == (4, 384)
    cosines = np.sum(fast * slow, axis=1)
    assert cosines.min() > 0.99999
    assert np.allclose(np.linalg.norm(fast, axis=1), 1.0, atol=1e-5)
    # Order is kept although batches are sorted by length inside.
    assert int(np.argmax(fast @ slow[0])) == 0


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match="auto, onnx, onnx-int8 or torch"):
        SentenceEmbedder(backend="tensorrt")


def test_int8_is_close_to_the_full_precision_vectors(embedder: SentenceEmbedder) -> None:
    int8 = SentenceEmbedder(backend="onnx-int8")
    cosines = np.sum(int8.embed(TEXTS) * embedder.embed(TEXTS), axis=1)
    assert cosines.min() > 0.95
