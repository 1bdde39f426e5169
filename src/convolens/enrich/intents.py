"""Customer intents against a team's own taxonomy: per utterance, and the conversation's main one.

The taxonomy (`taxonomy.py`) is a YAML file the team owns and versions; the classifier
(`intent_model.py`) is trained from its examples. The component uses a trained artefact
when given one (refusing one trained for another taxonomy version); else the taxonomy
version's fine-tuned model when `convolens taxonomy train --fine-tune` has made one
(`intent_finetune.py`, in $CONVOLENS_CACHE/intents/<taxonomy_version>.finetuned/: its own
encoder's vectors, computed for the customer turns only); else it trains on the shared
frozen MiniLM vectors at start-up (about 5 s for the 35-intent default) and caches that
model under $CONVOLENS_CACHE/intents/<taxonomy_version>.npz for the next run.

Labels:
- `intent.utterance` for each customer turn (role customer or unknown; agent and bot turns
  and internal notes are skipped). Backchannels made only of acknowledgement words ("ok",
  "thanks!", "yes please", "hi") get no label: they carry no request, and labelling them
  out_of_scope would swamp the share of real off-topic requests. Every other turn gets an
  intent or `out_of_scope` (the background class won, or the turn's in-scope confidence is
  below the threshold: see intent_model.py); confidence is the intent's probability (for
  out_of_scope, 1 - the in-scope confidence, or the background class's probability if
  higher).
- `intent.primary` for the conversation: each in-scope customer turn votes for its intent
  with its probability times 1 + 1/(k+1), k being the turn's position among the customer's
  labelled turns (2x for the first, 1.5x for the second, ...): the opening usually states the
  reason for contact, yet an intent the customer keeps returning to can still win. Its
  confidence is the best supporting turn's probability times the winner's share of all
  votes (a lone clear request keeps its probability; competing requests lower it);
  evidence is the turns that voted for it.
  A conversation with no in-scope customer turn gets no primary intent.
"""

from __future__ import annotations

import contextlib
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
from pydantic import BaseModel, Field

from convolens.enrich.base import Annotation, Component, Doc
from convolens.enrich.embeddings import (
    SentenceEmbedder,
    batch_utterance_embeddings,
    shared_embedder,
)
from convolens.enrich.intent_encoder import fine_tuned_dir, load_fine_tuned
from convolens.enrich.intent_model import IntentModel, IntentModelMismatchError
from convolens.enrich.intent_training import train_intent_model
from convolens.enrich.onnx_encoder import cache_dir
from convolens.enrich.taxonomy import DEFAULT_TAXONOMY, OUT_OF_SCOPE, Taxonomy, load_taxonomy
from convolens.model import Role

if TYPE_CHECKING:  # torch is imported only when fine-tuning
    from convolens.enrich.intent_finetune import FineTuneSettings, Progress

__all__ = [
    "BACKCHANNEL_WORDS",
    "IntentComponent",
    "IntentTrainReport",
    "cached_model_path",
    "is_backchannel",
    "train_taxonomy",
]

UTTERANCE = "intent.utterance"
PRIMARY = "intent.primary"
TOP_K = 3
# Words that, alone, acknowledge or greet rather than ask: a turn made only of these is a
# backchannel. "no"/"yes" are here; "not", "cancel", "refund" and the like are not.
BACKCHANNEL_WORDS = frozenset(
    " ".join(
        [
            "ok okay okey k kk alright all right fine sure yes yeah yep yup ya yea no nope nah",
            "thanks thank you thx ty cheers much so very many a lot lots great cool perfect",
            "awesome nice good lovely brilliant excellent got it understood noted hi hello hey",
            "hiya morning afternoon evening bye goodbye cya see later please pls plz hmm hm mm",
            "mhm uh um er oh ah sounds will do that's that is correct exactly indeed sir madam",
            "there",
        ]
    ).split()
)
# Letters (any script) with inner apostrophes; digits alone ("12345") are no words.
_WORD = re.compile(r"[^\W\d_]+(?:'[^\W\d_]+)*")
_TAG = re.compile(r"<[A-Z][A-Z_]*>")


def is_backchannel(text: str) -> bool:
    """True for a turn with no words, or only acknowledgement/greeting words ("ok thanks!")."""
    words = _WORD.findall(_TAG.sub(" ", text).lower().replace("\u2019", "'"))
    return all(w in BACKCHANNEL_WORDS for w in words)


def cached_model_path(taxonomy_version: str) -> Path:
    """Where a model trained at start-up for this taxonomy version is kept."""
    safe = re.sub(r"[^A-Za-z0-9_.+\-]", "_", taxonomy_version)
    return cache_dir() / "intents" / f"{safe}.npz"


class IntentComponent(Component):
    """Labels customer turns with intents of a taxonomy, and each conversation's main intent."""

    name = "intents"
    version = "2"
    # Its models and cue lists read English; other languages are skipped, not mislabelled.
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})
    assigns: ClassVar[tuple[str, ...]] = (UTTERANCE, PRIMARY)
    description = "Customer intents from a versioned taxonomy, per utterance and per conversation."

    def __init__(
        self, config: dict[str, Any] | None = None, *, embedder: SentenceEmbedder | None = None
    ) -> None:
        super().__init__(config)
        self.taxonomy: Taxonomy = load_taxonomy(self.config.get("taxonomy") or DEFAULT_TAXONOMY)
        self.taxonomy_version = self.taxonomy.taxonomy_version
        self.embedder = (
            embedder
            or self.config.get("embedder")
            or shared_embedder(self.config.get("embedding_model"))
        )
        self.fine_tuned = False
        self.model = self._model()
        self.model_id = f"{self.model.embedding_model or self.embedder.model_id}+svm-knn"
        threshold = self.config.get("threshold")
        self.threshold = float(threshold) if threshold is not None else self.model.threshold
        self._paths = {i: self.taxonomy.path(i) for i in self.model.intents}

    def _model(self) -> IntentModel:
        """The given artefact (a `.npz`, or a fine-tuned model's folder), else this taxonomy
        version's fine-tuned model, else the cached frozen one, else train the frozen one."""
        version = self.taxonomy.taxonomy_version
        if self.config.get("model"):
            if Path(self.config["model"]).is_dir():
                self.fine_tuned = True
                return load_fine_tuned(self.config["model"], version)
            return IntentModel.load(
                self.config["model"], taxonomy_version=version, embedder=self.embedder
            )
        use_cache = self.config.get("cache", True)
        folder = fine_tuned_dir(version)
        if use_cache and self.config.get("fine_tuned", True) and folder.is_dir():
            try:
                model = load_fine_tuned(folder, version)
                self.fine_tuned = True
                return model
            except (IntentModelMismatchError, OSError, ValueError, KeyError):
                pass  # incomplete or of another format: the frozen path below still works
        cached = cached_model_path(version)
        if use_cache and cached.exists():
            try:
                return IntentModel.load(cached, taxonomy_version=version, embedder=self.embedder)
            except (IntentModelMismatchError, OSError, ValueError, KeyError):
                pass  # another format or a damaged file: train again and replace it
        model = train_intent_model(self.taxonomy, self.embedder)
        if use_cache:
            # A read-only cache costs a retrain next time, not this run.
            with contextlib.suppress(OSError):
                model.save(cached)
        return model

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        chosen = [self._customer_turns(doc) for doc in batch]
        texts = [
            doc.conversation.utterances[i].text
            for doc, rows in zip(batch, chosen, strict=True)
            for i in rows
        ]
        if self.fine_tuned:
            # Its own encoder, on the customer turns only: the shared utterance vectors in
            # Doc.cache stay the shared model's for the other components.
            stacked, head = self.model.embed(texts)
        else:
            head = None
            embeddings = batch_utterance_embeddings(batch, self.embedder)
            vectors = [v[rows] for v, rows in zip(embeddings, chosen, strict=True) if rows]
            stacked = np.vstack(vectors) if vectors else np.zeros((0, self.embedder.dimension))
        probs, confidence = self.model.scores(texts, stacked, head)
        labels, best = self.model.decide(probs, self.threshold, confidence)
        # An out_of_scope label is as sure as the turn is unlike every intent.
        rejection = 1.0 - confidence
        out: list[list[Annotation]] = []
        offset = 0
        for doc, rows in zip(batch, chosen, strict=True):
            span = slice(offset, offset + len(rows))
            out.append(
                self._label(doc, rows, probs[span], labels[span], best[span], rejection[span])
            )
            offset += len(rows)
        return out

    def _customer_turns(self, doc: Doc) -> list[int]:
        roles = {p.participant_id: p.role for p in doc.conversation.participants}
        return [
            i
            for i, u in enumerate(doc.conversation.utterances)
            if not u.internal
            and roles.get(u.participant_id, Role.unknown) in (Role.customer, Role.unknown)
            and u.text.strip()
            and not is_backchannel(u.text)
        ]

    def _label(
        self,
        doc: Doc,
        rows: list[int],
        probs: np.ndarray,
        labels: list[str],
        best: np.ndarray,
        rejection: np.ndarray,
    ) -> list[Annotation]:
        intents = self.model.intents
        intent_cols = [self.model.classes.index(i) for i in intents]
        out: list[Annotation] = []
        votes: dict[str, float] = {}
        voters: dict[str, list[int]] = {}
        strongest: dict[str, float] = {}
        turns = zip(rows, probs, labels, best, rejection, strict=True)
        for k, (i, p, label, top_prob, unlike) in enumerate(turns):
            order = np.argsort(-p[intent_cols])[:TOP_K]
            top = [[intents[j], round(float(p[intent_cols[j]]), 4)] for j in order]
            in_scope = label != OUT_OF_SCOPE
            value = {
                "intent": label,
                "parent": self.taxonomy.parent_of(label) if in_scope else None,
                "path": list(self._paths[label]) if in_scope else [],
                "out_of_scope": not in_scope,
                "top": top,
            }
            if in_scope:
                confidence = float(top_prob)
            else:  # the background class's win, or how unlike every intent the turn is
                background = float(p[-1]) if self.model.classes[-1] == OUT_OF_SCOPE else 0.0
                confidence = max(float(unlike), background)
            out.append(
                Annotation(
                    UTTERANCE, value, round(confidence, 4), doc.utterance_ids[i], [doc.whole(i)]
                )
            )
            if in_scope:
                votes[label] = votes.get(label, 0.0) + float(top_prob) * (1.0 + 1.0 / (k + 1))
                voters.setdefault(label, []).append(i)
                strongest[label] = max(strongest.get(label, 0.0), float(top_prob))
        if votes:
            out.append(self._primary(doc, votes, voters, strongest))
        return out

    def _primary(
        self,
        doc: Doc,
        votes: dict[str, float],
        voters: dict[str, list[int]],
        strongest: dict[str, float],
    ) -> Annotation:
        ranked = sorted(votes.items(), key=lambda kv: (-kv[1], kv[0]))
        intent, score = ranked[0]
        total = sum(votes.values())
        value = {
            "intent": intent,
            "parent": self.taxonomy.parent_of(intent),
            "path": list(self._paths[intent]),
            "score": round(score, 4),
            "utterances": [doc.utterance_ids[i] for i in voters[intent]],
            "candidates": [[name, round(s, 4)] for name, s in ranked[:TOP_K]],
        }
        return Annotation(
            PRIMARY,
            value,
            round(strongest[intent] * score / total, 4),
            None,
            [doc.whole(i) for i in voters[intent]],
        )


class IntentScore(BaseModel):
    intent: str
    path: list[str]
    examples: int
    cv_accuracy: float | None = None
    confused_with: str | None = None


class IntentTrainReport(BaseModel):
    """What `convolens taxonomy train` prints: classes, examples, cross-validated accuracy."""

    taxonomy: str
    name: str
    taxonomy_version: str
    output: str | None
    classes: int
    examples: int
    out_of_scope_examples: int
    cv_accuracy: float | None
    threshold: float
    threshold_source: str
    false_rejection: float | None = None
    out_of_scope_recall: float | None = None
    temperature: float
    train_seconds: float
    # "k-fold" (frozen encoder) or "held out" (fine-tuned: its unseen examples).
    calibration: str = "k-fold"
    # With --fine-tune: the encoder's id and where the model was written.
    fine_tuned_model: str | None = None
    intents: list[IntentScore] = Field(default_factory=list)
    # Intents whose cross-validated accuracy is below WEAK_ACCURACY: add varied examples,
    # or merge them with the intent they are confused with.
    weak: list[str] = Field(default_factory=list)
    # What the loader changed to take the file as written, and names it normalised
    # (normalised -> as written).
    warnings: list[str] = Field(default_factory=list)
    renamed: dict[str, str] = Field(default_factory=dict)


WEAK_ACCURACY = 0.6


def model_name(model: IntentModel) -> str:
    return model.embedding_model or "all-MiniLM-L6-v2"


def train_taxonomy(
    taxonomy: str | Path | Taxonomy,
    output: str | Path | None = None,
    *,
    embedder: SentenceEmbedder | None = None,
    fine_tune: bool = False,
    settings: FineTuneSettings | None = None,
    progress: Progress | None = None,
) -> IntentTrainReport:
    """Train (and save to `output`, if given) the classifier of a taxonomy file, with a
    cross-validated accuracy per intent so teams see which intents are weak.

    `fine_tune`: fine-tune the encoder on the examples too (minutes; needs torch) and
    write the model folder to `output`, or by default to the model cache under the
    taxonomy version, where the `intents` component picks it up."""
    started = time.perf_counter()
    loaded = load_taxonomy(taxonomy)
    fine_tuned: str | None = None
    if fine_tune:
        from convolens.enrich.intent_finetune import fine_tune_taxonomy

        result = fine_tune_taxonomy(
            loaded,
            folder=Path(output) if output is not None else None,
            settings=settings,
            progress=progress,
        )
        model, output, fine_tuned = result.model, result.folder, model_name(result.model)
    else:
        model = train_intent_model(loaded, embedder or shared_embedder())
        if output is not None:
            model.save(output)
    cv = model.metadata.get("cv") or {}
    per_intent = cv.get("per_intent", {})
    scores = [
        IntentScore(
            intent=i.name,
            path=loaded.path(i.name),
            examples=len(i.examples),
            cv_accuracy=per_intent.get(i.name, {}).get("accuracy"),
            confused_with=per_intent.get(i.name, {}).get("confused_with"),
        )
        for i in loaded.intents
    ]
    return IntentTrainReport(
        taxonomy=str(taxonomy) if not isinstance(taxonomy, Taxonomy) else loaded.name,
        name=loaded.name,
        taxonomy_version=loaded.taxonomy_version,
        output=str(output) if output is not None else None,
        classes=len(loaded.intents),
        examples=sum(len(i.examples) for i in loaded.intents),
        out_of_scope_examples=len(loaded.out_of_scope),
        cv_accuracy=cv.get("accuracy"),
        threshold=model.threshold,
        threshold_source=model.metadata.get("threshold_source", ""),
        false_rejection=cv.get("false_rejection"),
        out_of_scope_recall=cv.get("out_of_scope_recall"),
        temperature=round(model.temperature, 4),
        train_seconds=round(time.perf_counter() - started, 2),
        calibration=model.metadata.get("calibration", "k-fold"),
        fine_tuned_model=fine_tuned,
        intents=scores,
        weak=sorted(
            (
                s.intent
                for s in scores
                if s.cv_accuracy is not None and s.cv_accuracy < WEAK_ACCURACY
            ),
            key=lambda name: per_intent[name]["accuracy"],
        ),
        warnings=loaded.load_warnings,
        renamed=loaded.original_names,
    )
