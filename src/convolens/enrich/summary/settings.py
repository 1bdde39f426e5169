"""Summary settings: what the summary holds is decided here (they are the component's
taxonomy: a change makes a new taxonomy version and the summaries are recomputed)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from convolens.model import Role

__all__ = ["SummaryConfig"]


class SummaryConfig(BaseModel):
    """Settings; unknown keys are errors so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Units to extract: `ratio` of the candidates, within [min_sentences, max_sentences].
    max_sentences: int = Field(default=3, ge=1, le=50)
    min_sentences: int = Field(default=2, ge=1, le=50)
    ratio: float = Field(default=0.25, gt=0, le=1)
    # Cosine above which a unit repeats one already chosen (MiniLM paraphrases ~0.8).
    redundancy: float = Field(default=0.8, gt=0, le=1)
    min_words: int = Field(default=5, ge=1)
    # Weight of earliness (1 for the first turn, 0 for the last) beside centrality: people
    # state what they came for early. On DialogSum train (300 dialogues) 1.0 beats 0.3 by
    # 0.3 ROUGE-L of the overview line and 2.0 loses again.
    position_weight: float = Field(default=1.0, ge=0)
    long_turn_words: int = Field(default=60, ge=10)
    both_sides: bool = True
    roles: tuple[Role, ...] = (Role.customer, Role.agent, Role.unknown)
    embedding_model: str | None = None
    # Meeting topics (TextTiling over utterance embeddings, `segmentation.py`): content
    # turns compared on each side of a gap, the depth (standard deviations above the mean
    # depth) a gap needs to be a boundary, the fewest content turns of a topic, the gaps
    # the similarity curve is smoothed over and the depth bonus of a gap whose next turn
    # announces a topic ("let's move on to"). The best of a grid on 20 QMSum train meetings
    # (training/summary/tune_segmentation.py): Pk 0.365 against 0.384 for no boundary
    # (without smoothing and cues the best was 0.383).
    segment_window: int = Field(default=60, ge=1)
    segment_depth: float = Field(default=2.0)
    segment_min_turns: int = Field(default=60, ge=2)
    segment_smooth: int = Field(default=9, ge=1)
    segment_cue_bonus: float = Field(default=2.0, ge=0)
    max_topics: int = Field(default=12, ge=1)
    # The overview line: at most this many words (DialogSum references average ~19).
    overview_max_words: int = Field(default=45, ge=10)
    # How the overview of an unclassified ("other") conversation picks its sentences:
    # "learned", the content selector trained on DialogSum train (`selector.py`), within
    # `selector_budget` words (None: the budget tuned with it); "centrality", summary v2's
    # LexRank-and-position key points, kept as the baseline it is measured against.
    selector: Literal["learned", "centrality"] = "learned"
    selector_budget: int | None = Field(default=None, ge=5, le=200)
    abstractive: bool = False
    # "openai": any OpenAI-compatible server at `llm_base_url`; "llama_cpp": a local GGUF
    # run in-process (`local_llm.py`, `make llm`), `llm_model_path` or the default model.
    llm_provider: Literal["openai", "llama_cpp"] = "openai"
    llm_model_path: str | None = None
    llm_threads: int | None = Field(default=None, ge=1, le=256)
    llm_base_url: str | None = None
    llm_model: str | None = None
    llm_api_key_env: str | None = "CONVOLENS_LLM_API_KEY"
    llm_timeout_s: float = Field(default=60.0, gt=0)
    llm_retries: int = Field(default=1, ge=0, le=5)
    llm_max_prompt_tokens: int = Field(default=3000, ge=100)
    llm_max_tokens: int = Field(default=256, ge=16)
    llm_on_error: Literal["raise", "skip"] = "raise"

    @model_validator(mode="after")
    def _check(self) -> SummaryConfig:
        if self.min_sentences > self.max_sentences:
            raise ValueError("min_sentences must not exceed max_sentences")
        return self
