"""`convolens taxonomy train --fine-tune`: the fine-tuning job with a progress bar.

The command itself is in `understand.py` beside the frozen training; this module runs the
minutes-long job (`enrich.intent_finetune`) under a Rich progress bar, one line a stage.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from convolens.enrich.intents import IntentTrainReport
from convolens.enrich.taxonomy import Taxonomy

__all__ = ["fine_tune_with_progress"]


def fine_tune_with_progress(
    path: Path | Taxonomy,
    output: Path | None,
    *,
    epochs: int,
    seed: int,
    max_steps: int | None = None,
) -> IntentTrainReport:
    """Fine-tune a taxonomy (a file, or the warehouse's active one); raises OSError and
    ValueError as `train_taxonomy` does."""
    from convolens.cli.main import _progress
    from convolens.enrich.intents import train_taxonomy

    try:
        from convolens.enrich.intent_finetune import FineTuneSettings
    except ImportError as exc:
        raise ValueError(
            f"fine-tuning needs torch and transformers ({exc.name} is missing): "
            "pip install 'convolens[enrich]'"
        ) from None

    settings = FineTuneSettings(epochs=epochs, seed=seed, max_steps=max_steps)
    with _progress() as bar:
        tasks: dict[str, Any] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)

        return train_taxonomy(path, output, fine_tune=True, settings=settings, progress=progress)
