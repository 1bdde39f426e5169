"""Keyphrases: what each conversation is about, as a few phrases that occur in it.

The method is KeyBERT (Grootendorst 2020), the field's standard embedding-based extractor:
candidate n-grams are ranked by the cosine between their embedding and the document's, and
Maximal Marginal Relevance (or Max-Sum) picks a diverse top n. KeyBERT's own
`extract_keywords` does the ranking and the diversity step, with the same loaded
all-MiniLM-L6-v2 model as every other component (`shared_embedder()`), never a second copy.

Candidates are 1-3 word runs of contiguous content words from the customer's and agents'
non-internal turns (bots' boilerplate and internal notes are not what the customer talked
about). Stop words, conversational filler ("yeah", "okay", "thanks", "hi"), PII tags left
by redaction ("<PERSON>"), URLs, @handles, numbers and ids ("ORD-55812") break runs, so no
candidate contains them. Each candidate keeps the character spans where it occurs, which
become the label's evidence.

Two deviations from stock KeyBERT, both for speed on 2 CPU cores. Measured on DialogSum
dev (500 two-party dialogues, 4,690 turns, ~4 candidates a turn) in turns per CPU-second
of the process, since the machine was shared and wall time swung 5x between runs: stock
KeyBERT (embedding every candidate and the joined transcript) 83; this component 400-430
with a cold process (every word new) and 900-970 once its word cache is warm (two runs).
The model runs on both cores, so wall-clock throughput on 2 idle cores is about twice
that (MiniLM on short strings here: 650 per CPU-second, 1,250 per second wall); in a
quiet moment, 200 dialogues ran at 1,100 turns/s wall against stock's 194. The utterance
embeddings all components share (~170 turns per CPU-second) are not counted: a run pays
them once, whichever component asks first.

1. The document embedding is the mean of the cached utterance embeddings (weighted by
   length) rather than a fresh encoding of the joined transcript: it is free, and it
   covers the whole conversation where MiniLM truncates the joined text at 256 word
   pieces: the sample support chats in examples/ run 200-600, so stock KeyBERT would
   read only their first half.
2. Stock KeyBERT embeds every candidate. Here a cheap first pass scores each candidate by
   the mean of its words' vectors (each distinct word embedded once per process and
   cached; a one-word candidate's vector is exactly its word's), and only the best
   `shortlist` (16) multi-word phrases go through the model before KeyBERT ranks them.
   Against stock KeyBERT with the same document vector, the shortlist keeps 4.2 of its 5
   phrases and the same top phrase in 99 % of dialogues.

Quality, as how often a top-k phrase shares a (stemmed) word with DialogSum's gold topic
label: hit@1/3/5 37.2 / 56.0 / 62.4 % here, 38.8 / 58.8 / 63.8 % for stock KeyBERT (the
joined transcript fits MiniLM's window in these short dialogues). MMR beats Max-Sum on
the same measure (56.0 against 50.0 hit@3), so MMR with diversity 0.5 is the default.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from convolens.enrich.base import Annotation, Component, Doc, Evidence
from convolens.enrich.embeddings import (
    SentenceEmbedder,
    batch_utterance_embeddings,
    shared_embedder,
)
from convolens.model import Role

__all__ = [
    "FILLER_WORDS",
    "Candidate",
    "KeyphraseComponent",
    "KeyphraseConfig",
    "extract_candidates",
]

# Words said in every conversation whatever it is about: greetings, thanks, hedges,
# back-channels and generic verbs. A phrase holding one of them names no topic.
_FILLER = """
    yeah yes yep yup yah ya nope nah okay ok okey k alright right hi hello hey hiya thanks
    thank thx ty cheers please pls plz sure great good fine cool sorry apologies apologize
    apologise um uh erm hmm mm oh ah lol haha bye goodbye welcome just like really actually
    basically maybe perhaps today tomorrow yesterday morning afternoon evening tonight day
    know think want need got get getting let able wonderful perfect awesome appreciate
    appreciated glad happy nice lot lots guess mean sounds sound hear look looking dear sir
    madam gonna wanna gotta kind bit thing things stuff going go come make say said tell told
    ask asked asking wondering wonder let's i'm i've i'd i'll you're you've you'll we're we've
    we'll it's that's there's don't doesn't didn't can't cannot won't isn't aren't wasn't
    haven't hasn't couldn't wouldn't shouldn't ma'am help helping helped assist assistance
    hope hopefully definitely absolutely certainly course try trying tried way does did doing
    check checked checking ready received went works worked says ago monday tuesday wednesday
    thursday friday saturday sunday wow obviously mr mrs ms
"""
FILLER_WORDS: frozenset[str] = frozenset(_FILLER.split())

# Runs never cross these: redaction tags, URLs, e-mail addresses and @handles.
# Tags are "<PERSON>" or, hashed, "<PERSON_1a2b3c4d>".
_MASK = re.compile(r"<[A-Z][A-Za-z0-9_]*>|https?://\S+|www\.\S+|\S+@\S+|@\w+")
# A word: letters/digits, with inner apostrophes or hyphens ("can't", "sign-in", "2fa").
_TOKEN = re.compile(r"[^\W_](?:[\w'\u2019-]*[^\W_])?")


def _stop_words(extra: Iterable[str] = ()) -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS

    return frozenset(ENGLISH_STOP_WORDS) | FILLER_WORDS | {w.lower() for w in extra}


def _usable(token: str, stop: frozenset[str]) -> bool:
    word = token.lower().replace("\u2019", "'")
    if len(word) < 2 or word in stop:
        return False
    digits = sum(c.isdigit() for c in word)
    # Numbers and ids ("2026", "ORD-55812") are not topics; "2fa" or "ios17" may be.
    return digits * 2 < len(word) and "'" not in word.strip("'")


@dataclass
class Candidate:
    """A candidate phrase (lower case, single spaces) and where it occurs."""

    phrase: str
    spans: list[tuple[int, int, int]] = field(default_factory=list)  # (utterance, start, end)


def extract_candidates(
    texts: list[tuple[int, str]],
    stop: frozenset[str],
    ngram_range: tuple[int, int] = (1, 3),
) -> dict[str, Candidate]:
    """Every run of 1-3 contiguous usable words in `texts` ((utterance index, text) pairs).

    Words must be separated by whitespace only: punctuation ends a run, so "card, payment"
    never becomes "card payment". Phrases are keyed in lower case.
    """
    low, high = ngram_range
    found: dict[str, Candidate] = {}
    for index, text in texts:
        masked = _MASK.sub(lambda m: "\x00" * len(m.group(0)), text)
        run: list[tuple[int, int]] = []
        previous_end = -1
        for match in _TOKEN.finditer(masked):
            start, end = match.span()
            gap = masked[previous_end:start] if previous_end >= 0 else ""
            usable = _usable(match.group(0), stop)
            if not usable or (run and gap.strip()):
                run = []
            if usable:
                run.append((start, end))
                # Every n-gram ending at this word.
                for n in range(low, min(high, len(run)) + 1):
                    first = run[-n][0]
                    phrase = " ".join(text[s:e].lower() for s, e in run[-n:])
                    phrase = phrase.replace("\u2019", "'")
                    found.setdefault(phrase, Candidate(phrase)).spans.append((index, first, end))
            previous_end = end
    return found


class KeyphraseConfig(BaseModel):
    """Settings; unknown keys are errors so typos do not pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    top_n: int = Field(default=5, ge=1, le=50)
    # How many of the top phrases make up the `topic.conversation` label.
    conversation_top: int = Field(default=3, ge=1, le=20)
    method: Literal["mmr", "maxsum"] = "mmr"
    # MMR: 0 = pure relevance, 1 = pure diversity. 0.5 keeps near-duplicates such as
    # "refund" / "refund request" apart while the top pick stays the most relevant phrase.
    diversity: float = Field(default=0.5, ge=0, le=1)
    nr_candidates: int = Field(default=20, ge=2, le=200)
    shortlist: int = Field(default=16, ge=1, le=1000)
    # Cosine to the conversation below which a phrase says little about it.
    min_score: float = Field(default=0.15, ge=-1, le=1)
    max_evidence: int = Field(default=5, ge=1, le=100)
    ngram_max: int = Field(default=3, ge=1, le=5)
    roles: tuple[Role, ...] = (Role.customer, Role.agent, Role.unknown)
    stop_words: tuple[str, ...] = ()
    embedding_model: str | None = None
    # Per-process caches of word and phrase vectors (384 floats each: 20k ~ 30 MB).
    cache_size: int = Field(default=20_000, ge=0)


class _VectorCache:
    """Embeddings of short strings, computed once per process, bounded in size."""

    def __init__(self, embedder: SentenceEmbedder, limit: int) -> None:
        self.embedder, self.limit = embedder, limit
        self.vectors: dict[str, np.ndarray] = {}

    def get(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.vectors))
        fresh = dict(zip(missing, self.embedder.embed(missing), strict=True))
        rows = [fresh[t] if t in fresh else self.vectors[t] for t in texts]
        if len(self.vectors) + len(fresh) > self.limit:
            # Dropping everything is crude but O(1) amortised; the hot vocabulary
            # comes back within a batch or two.
            self.vectors.clear()
        if len(fresh) <= self.limit:
            self.vectors.update(fresh)
        return np.vstack(rows) if rows else np.zeros((0, self.embedder.dimension), np.float32)


class KeyphraseComponent(Component):
    """Labels each conversation with `topic.keyphrase` phrases and a `topic.conversation`."""

    name = "topics"
    version = "1"
    # Its models and cue lists read English; other languages are skipped, not mislabelled.
    languages: ClassVar[frozenset[str] | None] = frozenset({"en"})
    assigns: ClassVar[tuple[str, ...]] = ("topic.keyphrase", "topic.conversation")
    description = "Keyphrases per conversation (KeyBERT + MMR over MiniLM), with evidence."

    def __init__(
        self, config: dict[str, Any] | None = None, *, embedder: SentenceEmbedder | None = None
    ) -> None:
        super().__init__(config)
        given = self.config.pop("embedder", None)
        self.settings = KeyphraseConfig.model_validate(self.config)
        self.embedder: SentenceEmbedder = (
            embedder or given or shared_embedder(self.settings.embedding_model)
        )
        self.model_id = self.embedder.model_id
        # Stop words and settings decide which phrases can come out: the taxonomy.
        self.taxonomy_version = hashlib.sha256(
            self.settings.model_dump_json().encode()
        ).hexdigest()[:12]
        from keybert import KeyBERT

        # The embedder's own SentenceTransformer: KeyBERT wraps it, it loads nothing.
        self.keybert = KeyBERT(model=self.embedder._model)
        self.stop = _stop_words(self.settings.stop_words)
        self._words = _VectorCache(self.embedder, self.settings.cache_size)
        self._phrases = _VectorCache(self.embedder, self.settings.cache_size)

    def __call__(self, batch: list[Doc]) -> list[list[Annotation]]:
        vectors = batch_utterance_embeddings(batch, self.embedder)
        per_doc = [self._candidates(doc) for doc in batch]
        # Word vectors for the whole batch in one model call: they score every candidate
        # cheaply, and a one-word candidate's vector is its word's.
        words = sorted({w for cands in per_doc for c in cands for w in c.phrase.split()})
        word_vectors = dict(zip(words, self._words.get(words), strict=True))
        centres = [self._centre(doc, v) for doc, v in zip(batch, vectors, strict=True)]
        shortlists = [
            self._shortlist(cands, centre, word_vectors) if centre is not None else []
            for cands, centre in zip(per_doc, centres, strict=True)
        ]
        # Then the shortlisted multi-word phrases of the whole batch, in one call too.
        phrases = sorted({c.phrase for short in shortlists for c in short if " " in c.phrase})
        phrase_vectors = dict(zip(phrases, self._phrases.get(phrases), strict=True))
        phrase_vectors.update((w, word_vectors[w]) for w in words)
        return [
            self._label(doc, centre, short, phrase_vectors) if centre is not None else []
            for doc, centre, short in zip(batch, centres, shortlists, strict=True)
        ]

    def _kept(self, doc: Doc) -> list[int]:
        roles = {p.participant_id: p.role for p in doc.conversation.participants}
        return [
            i
            for i, u in enumerate(doc.conversation.utterances)
            if not u.internal
            and u.text.strip()
            and roles.get(u.participant_id, Role.unknown) in self.settings.roles
        ]

    def _candidates(self, doc: Doc) -> list[Candidate]:
        texts = [(i, doc.conversation.utterances[i].text) for i in self._kept(doc)]
        found = extract_candidates(texts, self.stop, (1, self.settings.ngram_max))
        return list(found.values())

    def _centre(self, doc: Doc, vectors: np.ndarray) -> np.ndarray | None:
        """The conversation's embedding: the mean of its kept turns' (unit) vectors, each
        weighted by its length in words, capped so one pasted log does not speak for all."""
        kept = self._kept(doc)
        if not kept:
            return None
        utterances = doc.conversation.utterances
        weights = np.array([min(len(utterances[i].text.split()), 40) for i in kept], np.float32)
        centre = (vectors[kept] * weights[:, None]).sum(axis=0)
        norm = float(np.linalg.norm(centre))
        return centre / norm if norm > 0 else None

    def _rank(
        self,
        doc: Doc,
        centre: np.ndarray,
        phrases: list[str],
        phrase_vectors: dict[str, np.ndarray],
    ) -> list[tuple[str, float]]:
        """KeyBERT's choice among `phrases`: (phrase, cosine to the conversation), best first."""
        from sklearn.feature_extraction.text import CountVectorizer

        s = self.settings
        # KeyBERT reads candidates through a vectorizer; this one hands it our candidates
        # as found (our tokenizer, which keeps "sign-in" and "2fa" whole), in our order,
        # so its rows line up with the vectors passed beside it.
        vectorizer = CountVectorizer(vocabulary=phrases, analyzer=lambda _: phrases)
        # Max-Sum wants at least top_n candidates and at least top_n to pick from.
        top_n = min(s.top_n, len(phrases))
        ranked = self.keybert.extract_keywords(
            [doc.conversation_id],
            vectorizer=vectorizer,
            doc_embeddings=centre[None, :],
            word_embeddings=np.vstack([phrase_vectors[p] for p in phrases]),
            top_n=top_n,
            use_mmr=s.method == "mmr",
            use_maxsum=s.method == "maxsum",
            diversity=s.diversity,
            nr_candidates=max(top_n, min(s.nr_candidates, len(phrases))),
        )
        # MMR returns its picks by score, Max-Sum in combination order: rank by score.
        return sorted(((p, float(score)) for p, score in ranked), key=lambda pair: -pair[1])

    def _shortlist(
        self, cands: list[Candidate], centre: np.ndarray, word_vectors: dict[str, np.ndarray]
    ) -> list[Candidate]:
        """The `shortlist` candidates whose mean word vector is closest to the conversation."""
        limit = self.settings.shortlist
        if len(cands) <= limit:
            return cands
        proxies = np.vstack(
            [np.mean([word_vectors[w] for w in c.phrase.split()], axis=0) for c in cands]
        )
        proxies /= np.maximum(np.linalg.norm(proxies, axis=1, keepdims=True), 1e-12)
        scores = proxies @ centre
        best = np.argsort(-scores, kind="stable")[:limit]
        return [cands[i] for i in sorted(best)]

    def _label(
        self,
        doc: Doc,
        centre: np.ndarray,
        shortlist: list[Candidate],
        phrase_vectors: dict[str, np.ndarray],
    ) -> list[Annotation]:
        if not shortlist:
            return []
        s = self.settings
        phrases = [c.phrase for c in shortlist]
        ranked = self._rank(doc, centre, phrases, phrase_vectors)
        # A phrase inside a better one ("payments" after "declined card payments") repeats
        # it: drop such phrases from the candidates and let KeyBERT pick again (cheap: a
        # handful of vectors), so the diversity step still chooses the final set.
        for _ in range(3):
            words = [set(p.split()) for p, _ in ranked]
            inside = {p for k, (p, _) in enumerate(ranked) if any(words[k] <= w for w in words[:k])}
            if not inside:
                break
            phrases = [p for p in phrases if p not in inside]
            ranked = self._rank(doc, centre, phrases, phrase_vectors)
        by_phrase = {c.phrase: c for c in shortlist}
        out: list[Annotation] = []
        for phrase, score in ranked:
            if score < s.min_score:
                continue
            candidate = by_phrase[phrase]
            evidence = [
                Evidence(doc.utterance_ids[i], start, end)
                for i, start, end in candidate.spans[: s.max_evidence]
            ]
            value = {
                "phrase": phrase,
                "score": round(float(score), 4),
                "rank": len(out) + 1,
                "count": len(candidate.spans),
            }
            confidence = round(min(1.0, max(0.0, float(score))), 4)
            out.append(Annotation("topic.keyphrase", value, confidence, None, evidence))
        if out:
            top = out[: s.conversation_top]
            out.append(
                Annotation(
                    "topic.conversation",
                    {
                        "phrases": [a.value["phrase"] for a in top],
                        "scores": [a.value["score"] for a in top],
                    },
                    top[0].confidence,
                    None,
                    [e for a in top for e in a.evidence],
                )
            )
        return out
