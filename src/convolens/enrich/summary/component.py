"""Conversation summaries: what a person would write, by conversation type, each field with
the utterances it rests on.

The label `summary.extractive` holds, for every conversation:

- `type`: the conversation type (`conversation.type`, classified now if that component
  did not run) and `fields`, the structured summary of that type (`fields.py`): support:
  reason, actions taken, outcome, next steps; sales: needs, objections, competitors, next
  steps, commitments; meetings: topics with time ranges (TextTiling over the utterance
  embeddings, `segmentation.py`), decisions, action items with owner and due date, open
  questions; interviews and others: key points;
- `text` (= `overview`): a short third-person line built from those fields, with filler
  and greetings cut and I/you turned into the people they are (`overview.py`);
- `sentences`: the salient units by embedding centrality (`extractive.py`), the passages
  the dashboard marks; plus `action_items` and `decisions`.

Every item carries `utterance_id`, `start` and `end`; the label's evidence is the union of
those spans. On DialogSum dev and QMSum val `eval/summary.py` scores it beside lead-3.

Optionally (`abstractive: true`) an LLM behind an OpenAI-compatible chat-completions API
writes `summary.abstractive` from the transcript the component sees (already redacted
when PII redaction ran first), scrubbed again of e-mail addresses and phone/card numbers,
and cut to a token budget (head and tail kept: problems are stated early, outcomes late).
The backend is a small protocol (`LlmBackend`) so a user can plug in their own client.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from typing import Any, ClassVar

import numpy as np
from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.conversation_type import conversation_type_of
from convolens.enrich.embeddings import (
    SentenceEmbedder,
    batch_utterance_embeddings,
    shared_embedder,
)
from convolens.enrich.nlp import shared_nlp
from convolens.enrich.summary.extractive import SENTENCE, Unit, choose, split_units
from convolens.enrich.summary.fields import (
    DECISION_CUES,
    Sentence,
    decisions,
    fields_for,
    sentences_of,
)
from convolens.enrich.summary.llm import (
    LlmBackend,
    LlmError,
    OpenAICompatibleBackend,
    scrub_contact_details,
)
from convolens.enrich.summary.local_llm import LlamaCppBackend
from convolens.enrich.summary.overview import join_parts, overview, point_renderer
from convolens.enrich.summary.segmentation import texttiling, topic_cues
from convolens.enrich.summary.selector import (
    ContentSelector,
    SentenceInfo,
    candidate_sentences,
    candidate_vectors,
    choose_points,
    features,
    own_sentences,
    shared_selector,
)
from convolens.enrich.summary.settings import SummaryConfig
from convolens.enrich.summary.text import is_filler, speaker_names, strip_lead_in
from convolens.model import Role

__all__ = ["DECISION_CUES", "ROLE_NAMES", "SummaryComponent"]

ROLE_NAMES = {Role.customer: "Customer", Role.agent: "Agent", Role.bot: "Bot"}
_WORD = re.compile(r"(?<![\w'])[a-z][a-z-]{3,}(?![\w'])")
# Redaction's placeholders ("<PERSON>", "<PHONE_NUMBER_1a2b3c4d>") are not topics: a
# meeting full of masked names was "about person and people".
_PLACEHOLDER = re.compile(r"<[A-Z][A-Z_]*(?:_[0-9a-f]{8})?>")
# Words that name no topic: English stop words and the fillers of speech.
_STOP = ENGLISH_STOP_WORDS | {
    "yeah", "okay", "think", "know", "like", "just", "really", "going", "mean", "right",
    "thing", "things", "actually", "basically", "maybe", "sort", "kind", "gonna", "wanna",
    "it's", "don't", "that's", "i'm", "we're", "you're", "they're", "can't", "i've",
    "we've", "let's", "didn't", "doesn't", "there's", "what's", "good", "well",
    "want", "said", "says", "sure", "need", "make", "probably", "guess", "little", "lots",
    "stuff", "yes", "alright", "pretty", "look", "thank", "thanks", "people",
}  # fmt: skip


class SummaryComponent(Component):
    """Labels each conversation with `summary.extractive` (and `summary.abstractive`)."""

    name = "summary"
    version = "4"
    # Its models and cue lists read English; other languages are skipped, not mislabelled.
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})
    requires: ClassVar[tuple[str, ...]] = ("conversation.type",)
    assigns: ClassVar[tuple[str, ...]] = ("summary.extractive", "summary.abstractive")
    description = "Structured summary per conversation type, overview line; opt. LLM."

    def __init__(
        self,
        config: dict[str, Any] | None = None,
        *,
        embedder: SentenceEmbedder | None = None,
        backend: LlmBackend | None = None,
        nlp: Any | None = None,
    ) -> None:
        super().__init__(config)
        given_embedder = self.config.pop("embedder", None)
        given_backend = self.config.pop("llm_backend", None)
        self.settings = SummaryConfig.model_validate(self.config)
        self.embedder: SentenceEmbedder = (
            embedder or given_embedder or shared_embedder(self.settings.embedding_model)
        )
        self.nlp = nlp or shared_nlp()
        self.backend: LlmBackend | None = backend or given_backend
        s = self.settings
        if self.backend is None and s.abstractive and s.llm_provider == "llama_cpp":
            self.backend = LlamaCppBackend(s.llm_model_path, n_threads=s.llm_threads)
        elif self.backend is None and s.abstractive:
            if not s.llm_base_url or not s.llm_model:
                raise ValueError("abstractive summaries need `llm_base_url` and `llm_model`")
            self.backend = OpenAICompatibleBackend(
                s.llm_base_url,
                s.llm_model,
                api_key_env=s.llm_api_key_env,
                timeout_s=s.llm_timeout_s,
                retries=s.llm_retries,
            )
        # The settings decide what the summary holds: they are this component's taxonomy.
        self.taxonomy_version = hashlib.sha256(
            s.model_dump_json(exclude={"llm_api_key_env"}).encode()
        ).hexdigest()[:12]
        self.selector: ContentSelector | None = (
            shared_selector() if s.selector == "learned" else None
        )
        self.model_id = (
            self.embedder.model_id
            + (f"+{self.selector.model_id}" if self.selector is not None else "")
            + (f"+{self.backend.model_id}" if self.backend is not None else "")
        )

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        vectors = batch_utterance_embeddings(batch, self.embedder)
        units = [split_units(doc, self.settings) for doc in batch]
        # The learned selector reads every content sentence of an "other" conversation.
        candidates = [
            candidate_sentences(doc) if self._selects(doc) else ([], [], []) for doc in batch
        ]
        # Sentences of long turns need their own vectors: one model call for the batch.
        fresh = iter(self.embedder.embed([u.text for us in units for u in us if not u.whole]))
        matrices = []
        for doc_vectors, doc_units in zip(vectors, units, strict=True):
            rows = [doc_vectors[u.index] if u.whole else next(fresh) for u in doc_units]
            matrices.append(np.vstack(rows) if rows else np.zeros((0, self.embedder.dimension)))
        # The selector's sentences likewise, a whole turn reusing its turn's vector.
        texts = [
            t for doc, c in zip(batch, candidates, strict=True) for t in own_sentences(doc, c[0])
        ]
        embedded = iter(self.embedder.embed(texts))
        selections = [
            candidate_vectors(doc, sentences, doc_vectors, embedded)
            for doc, doc_vectors, (sentences, _, _) in zip(batch, vectors, candidates, strict=True)
        ]
        out: list[list[Annotation]] = []
        for doc, doc_vectors, doc_units, matrix, candidate, selection in zip(
            batch, vectors, units, matrices, candidates, selections, strict=True
        ):
            summary = self._summary(doc, doc_units, matrix, doc_vectors, candidate, selection)
            labels = [summary] if summary is not None else []
            if self.backend is not None and self.settings.abstractive:
                abstract = self._abstractive(doc)
                if abstract is not None:
                    labels.append(abstract)
            out.append(labels)
        return out

    def _roles(self, doc: Doc) -> dict[str, Role]:
        return {p.participant_id: p.role for p in doc.conversation.participants}

    def _selects(self, doc: Doc) -> bool:
        """Whether the learned selector builds this conversation's overview."""
        kind = str(conversation_type_of(doc).get("type", "other"))
        return self.selector is not None and kind == "other"

    def _selected(
        self,
        doc: Doc,
        candidate: tuple[list[Sentence], list[SentenceInfo], list[str]],
        selection: np.ndarray,
    ) -> tuple[list[dict[str, Any]], str]:
        """The key points the learned selector picks and the overview line they make."""
        assert self.selector is not None
        sentences, infos, participants = candidate
        if not sentences:
            return [], ""
        scores = self.selector.score(features(infos, selection, len(doc.conversation.utterances)))
        items = [s.item() for s in sentences]
        render = point_renderer(self.nlp, participants, None, "other")
        budget = self.settings.selector_budget or self.selector.budget(infos)
        chosen = choose_points(
            lambda k: render(items[k]), scores, budget, overflow=self.selector.overflow
        )
        points = [{**items[k], "score": round(float(scores[k]), 4)} for k, _ in chosen]
        return points, join_parts([text for _, text in chosen], participants)

    def _summary(
        self,
        doc: Doc,
        units: list[Unit],
        matrix: np.ndarray,
        vectors: np.ndarray,
        candidate: tuple[list[Sentence], list[SentenceInfo], list[str]],
        selection: np.ndarray,
    ) -> Annotation | None:
        picked = [units[k] for k in choose(units, matrix, self.settings)]
        names = speaker_names(doc.conversation)
        speakers = [u.participant_id for u in doc.conversation.utterances]
        sentences = [
            {
                "utterance_id": doc.utterance_ids[u.index],
                "text": u.text,
                "role": u.role.value,
                "start": u.start,
                "end": u.end,
            }
            for u in picked
        ]
        key_points = []
        for u in picked:
            start, end = first_sentence(u.text)
            key_points.append(
                {
                    "text": strip_lead_in(u.text[start:end]),
                    "utterance_id": doc.utterance_ids[u.index],
                    "start": u.start + start,
                    "end": u.start + end,
                    "speaker": names.get(speakers[u.index], speakers[u.index]),
                }
            )
        kind = str(conversation_type_of(doc).get("type", "other"))
        content = sentences_of(doc)
        topics = self._topics(doc, vectors) if kind in ("meeting", "interview") else []
        line = ""
        if self._selects(doc):
            selected, line = self._selected(doc, candidate, selection)
            key_points = selected or key_points
        fields = fields_for(kind, doc, content, topics, key_points)
        if not picked and not any(fields.values()):
            return None
        participants = list(dict.fromkeys(names[p] for p in speakers if p in names))
        line = line or overview(
            kind,
            fields,
            participants,
            self.nlp,
            self.settings.overview_max_words,
            counterpart=_counterparts(doc, names),
        )
        if not line:
            line = overview("other", {"key_points": key_points}, participants, self.nlp, 45)
        evidence: list[Evidence] = [
            Evidence(doc.utterance_ids[u.index], u.start, u.end) for u in picked
        ]
        for items in fields.values():
            for item in items:
                e = Evidence(item["utterance_id"], item["start"], item["end"])
                if e not in evidence:
                    evidence.append(e)
        value = {
            "text": line,
            "overview": line,
            "type": kind,
            "fields": fields,
            "sentences": sentences,
            "action_items": fields.get("action_items") or fields.get("next_steps") or [],
            "decisions": fields.get("decisions") or decisions(content),
        }
        return Annotation("summary.extractive", value, None, None, evidence)

    def _topics(self, doc: Doc, vectors: np.ndarray) -> list[dict[str, Any]]:
        """Topic segments with a title, turn and time range, and their central utterance."""
        utterances = doc.conversation.utterances
        content = [
            i
            for i, u in enumerate(utterances)
            if not u.internal and len(u.text.split()) >= 4 and not is_filler(u.text)
        ]
        if not content:
            return []
        s = self.settings
        matrix = vectors[content]
        starts = texttiling(
            matrix,
            window=s.segment_window,
            depth=s.segment_depth,
            min_turns=s.segment_min_turns,
            most=s.max_topics,
            smooth=s.segment_smooth,
            cues=topic_cues([utterances[i].text for i in content]),
            cue_bonus=s.segment_cue_bonus,
        )
        bounds = [0, *starts, len(content)]
        words = [
            Counter(_WORD.findall(_PLACEHOLDER.sub(" ", utterances[i].text).lower()))
            for i in content
        ]
        segments = [(bounds[k], bounds[k + 1]) for k in range(len(bounds) - 1)]
        df: Counter[str] = Counter()
        counts = []
        for a, b in segments:
            total: Counter[str] = Counter()
            for row in words[a:b]:
                total.update(row)
            counts.append(total)
            df.update(set(total))
        names = speaker_names(doc.conversation)
        out = []
        for (a, b), total in zip(segments, counts, strict=True):
            idf = {w: math.log((1 + len(segments)) / (1 + df[w])) + 1 for w in total}
            ranked = sorted(
                (w for w in total if w not in _STOP and total[w] >= 2),
                key=lambda w: (-total[w] * idf[w], w),
            )
            centre = matrix[a:b].mean(axis=0)
            best = content[a + int(np.argmax(matrix[a:b] @ centre))]
            first, last = utterances[content[a]], utterances[content[b - 1]]
            start, end = first_sentence(utterances[best].text)
            text = strip_lead_in(utterances[best].text[start:end])
            out.append(
                {
                    "title": ", ".join(ranked[:3]) or text[:60],
                    "text": text,
                    "utterance_id": doc.utterance_ids[best],
                    "start": start,
                    "end": end,
                    "speaker": names.get(utterances[best].participant_id),
                    "first_turn": content[a],
                    "last_turn": content[b - 1],
                    "start_time": first.start,
                    "end_time": last.end,
                }
            )
        return out

    def transcript(self, doc: Doc) -> tuple[str, list[int], bool]:
        """The prompt's transcript within the token budget: (text, turns used, truncated).

        Tokens are estimated at 4 characters each (English BPE averages ~4). Over budget,
        the first and last turns are kept, half the budget each, and a marker says how
        many turns in between were left out.
        """
        roles = self._roles(doc)
        lines: list[tuple[int, str]] = []
        for i, utterance in enumerate(doc.conversation.utterances):
            role = roles.get(utterance.participant_id, Role.unknown)
            if utterance.internal or role not in self.settings.roles or not utterance.text.strip():
                continue
            speaker = ROLE_NAMES.get(role) or f"Speaker {utterance.participant_id}"
            text = " ".join(scrub_contact_details(utterance.text).split())
            lines.append((i, f"{speaker}: {text}"))
        budget = self.settings.llm_max_prompt_tokens * 4
        if sum(len(line) + 1 for _, line in lines) <= budget:
            return "\n".join(line for _, line in lines), [i for i, _ in lines], False
        head: list[tuple[int, str]] = []
        tail: list[tuple[int, str]] = []
        used = 0
        for item in lines:
            if used + len(item[1]) + 1 > budget // 2:
                break
            head.append(item)
            used += len(item[1]) + 1
        used = 0
        for item in reversed(lines[len(head) :]):
            if used + len(item[1]) + 1 > budget // 2:
                break
            tail.insert(0, item)
            used += len(item[1]) + 1
        if not head:
            # One enormous first turn: keep its beginning.
            first = lines[0]
            head = [(first[0], first[1][: budget // 2])]
        skipped = len(lines) - len(head) - len(tail)
        middle = [f"[... {skipped} turns left out ...]"] if skipped > 0 else []
        text = "\n".join([line for _, line in head] + middle + [line for _, line in tail])
        return text, [i for i, _ in head + tail], True

    def _abstractive(self, doc: Doc) -> Annotation | None:
        assert self.backend is not None
        transcript, used, truncated = self.transcript(doc)
        if not transcript:
            return None
        kind = str(conversation_type_of(doc).get("type", "other"))
        messages = [
            {"role": "system", "content": _PROMPTS.get(kind, _PROMPTS["other"])},
            {"role": "user", "content": f"Transcript:\n{transcript}\n\nSummary:"},
        ]
        try:
            reply = self.backend.complete(messages, max_tokens=self.settings.llm_max_tokens)
        except LlmError:
            if self.settings.llm_on_error == "skip":
                return None
            raise
        value = {"text": reply, "model": self.backend.model_id, "truncated": truncated}
        evidence = [doc.whole(i) for i in used]
        return Annotation("summary.abstractive", value, None, None, evidence)


_RULES = (
    " Use only facts from the transcript, in the third person, naming speakers as the "
    "transcript does. Keep placeholders such as <PERSON> as they are."
)
# One instruction per conversation type: what a reader of that kind of record wants.
_PROMPTS = {
    "support": "You summarise customer-service conversations for the support team. In 2 "
    "to 4 sentences, say what the customer needed, what was done, the outcome and any "
    "follow-up promised." + _RULES,
    "sales": "You summarise sales calls for the account team. In 2 to 4 sentences, say "
    "what the prospect needs, their objections, competitors named and the agreed next "
    "steps." + _RULES,
    "meeting": "You summarise meetings. In 2 to 4 sentences, say what was discussed, "
    "what was decided and who will do what." + _RULES,
    "other": "You summarise conversations. In one or two short sentences, say who wanted "
    "what and how it ended." + _RULES,
}


def first_sentence(text: str) -> tuple[int, int]:
    """Where the first sentence of `text` that is not filler lies (else its first one)."""
    spans = []
    for match in SENTENCE.finditer(text):
        piece = match.group(0)
        start = match.start() + len(piece) - len(piece.lstrip())
        end = match.end() - (len(piece) - len(piece.rstrip()))
        if end > start:
            spans.append((start, end))
    for start, end in spans:
        if not is_filler(text[start:end]) and len(text[start:end].split()) >= 3:
            return start, end
    return spans[0] if spans else (0, len(text))


def _counterparts(doc: Doc, names: dict[str, str]) -> dict[str, str]:
    """Whom each side addresses where roles are known: the customer the agent (or bot) and
    the first agent the customer."""
    roles = {p.participant_id: p.role for p in doc.conversation.participants}
    customers = [names[p] for p, r in roles.items() if r == Role.customer]
    agents = [names[p] for p, r in roles.items() if r == Role.agent]
    agents += [names[p] for p, r in roles.items() if r == Role.bot]
    out: dict[str, str] = {}
    if customers:
        for p, r in roles.items():
            if r in (Role.agent, Role.bot):
                out[names[p]] = customers[0]
    if agents:
        for p, r in roles.items():
            if r == Role.customer:
                out[names[p]] = agents[0]
    return out
