"""Enrichment fixtures: one real embedding model per session, documents built from text."""

from __future__ import annotations

import os

# Weights come from the installed package; a hub look-up must never happen.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from collections.abc import Callable

import pytest

from convolens.enrich.base import Doc
from convolens.enrich.embeddings import SentenceEmbedder
from convolens.model import Conversation

MakeDoc = Callable[..., Doc]


def _make_doc(cid: str, turns: list[tuple[str, str]], internal: set[int] | None = None) -> Doc:
    """A chat between customer "c" and agent "a"; `turns` are (participant, text)."""
    conversation = Conversation.model_validate(
        {
            "conversation_id": cid,
            "channel": "chat",
            "source": {"system": "test"},
            "participants": [
                {"participant_id": "c", "role": "customer"},
                {"participant_id": "a", "role": "agent"},
            ],
            "utterances": [
                {"participant_id": p, "text": t, "internal": i in (internal or set())}
                for i, (p, t) in enumerate(turns)
            ],
        }
    )
    return Doc(cid, 1, conversation, [f"{cid}:{i}" for i in range(len(turns))])


@pytest.fixture(scope="session")
def embedder() -> SentenceEmbedder:
    return SentenceEmbedder()


@pytest.fixture(scope="session")
def make_doc() -> MakeDoc:
    return _make_doc
