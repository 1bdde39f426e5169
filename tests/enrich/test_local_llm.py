"""The optional llama.cpp backend: joining the registry's model slices, and what a user
sees with and without `make llm` (the runtime is never installed by `make test`)."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from test_summary import CHAT

from convolens.enrich.embeddings import SentenceEmbedder
from convolens.enrich.summary import SummaryComponent
from convolens.enrich.summary.llm import LlmUnavailableError
from convolens.enrich.summary.local_llm import assemble_gguf, default_gguf_path


def test_slices_are_joined_in_order_and_only_once(tmp_path: Path) -> None:
    parts = []
    for n, content in enumerate([b"GGUF", b"\x00" * 3000, b"tail"], start=1):
        part = tmp_path / f"part{n:02d}.bin"
        part.write_bytes(content)
        parts.append(part)
    target = tmp_path / "models" / "model.gguf"
    assert assemble_gguf(target, parts) == target
    assert target.read_bytes() == b"GGUF" + b"\x00" * 3000 + b"tail"
    assert not list(target.parent.glob("*.partial"))
    # A second call keeps the joined file (no re-read: the slices may be gone by then).
    for part in parts:
        part.unlink()
    assert assemble_gguf(target, parts).read_bytes().startswith(b"GGUF")


def test_default_model_lives_under_the_configured_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CONVOLENS_LLM_DIR", str(tmp_path))
    assert default_gguf_path().parent == tmp_path
    assert default_gguf_path().suffix == ".gguf"


def test_llama_cpp_backend_summarises_or_says_how_to_install_it(
    embedder: SentenceEmbedder, make_doc
) -> None:
    settings = {"abstractive": True, "llm_provider": "llama_cpp", "llm_max_tokens": 60}
    doc = make_doc("local-llm", CHAT, internal=set())
    if importlib.util.find_spec("llama_cpp") is None or not default_gguf_path().exists():
        # Without `make llm` the choice fails at once with the fix, not at the first batch.
        with pytest.raises(LlmUnavailableError, match="make llm"):
            SummaryComponent(settings, embedder=embedder)
        return
    component = SummaryComponent(settings, embedder=embedder)
    [labels] = component([doc])
    [abstract] = [a for a in labels if a.label == "summary.abstractive"]
    assert abstract.value["model"].startswith("llama.cpp:")
    assert len(abstract.value["text"].split()) >= 5
    assert abstract.evidence
