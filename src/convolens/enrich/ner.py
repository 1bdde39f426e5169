"""The named-entity model trained here (training/ner/): PER / LOC / ORG / MISC per word.

all-MiniLM-L6-v2 fine-tuned for token classification on CoNLL-2003 + WNUT-17 (+ seeded
conversational frames), shipped as an int8 ONNX graph with its tokenizer under
`data/ner/` and run with onnxruntime and `tokenizers` (no torch at run time). The encoder is
uncased, so lower-case ASR text is tagged as well as cased text. PII redaction reads its
per-word person probability (a threshold trades recall for over-masking); the entities
component can read its spans. See training/ner/MODEL_CARD.md for data, licences and figures.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "DEFAULT_NER_DIR",
    "NerModel",
    "TaggedWord",
    "decode_spans",
    "shared_ner",
]

DEFAULT_NER_DIR = Path(__file__).parent / "data" / "ner"
# The entities component's own copy: the same recipe run a fourth epoch. It is the better
# tagger (CoNLL-2003 dev ORG 0.858 against 0.846) but surer of itself on unknown words,
# and as the PII model it masked a made-up product name read as a vocative ("So zebraquill
# quorvantix, please"), so redaction keeps the 3-epoch model its thresholds were tuned on.
ENTITIES_NER_DIR = Path(__file__).parent / "data" / "ner_entities"
# Positions per window: the encoder was trained on up to 512, sentences on <= 128; long texts
# are read in overlapping windows so no text is refused and no word is read without context.
_WINDOW = 256
_STRIDE = 192


@dataclass(frozen=True, slots=True)
class TaggedWord:
    """One word of a text (the tokenizer's pre-tokenisation) with its label probabilities."""

    start: int
    end: int
    probs: np.ndarray  # over NerModel.labels

    def prob(self, model: NerModel, kind: str) -> float:
        """P(B-kind) + P(I-kind): how likely the word is part of a `kind` entity."""
        return float(self.probs[model.index[f"B-{kind}"]] + self.probs[model.index[f"I-{kind}"]])


class NerModel:
    """Loads the ONNX graph once; `words` / `tag_words` run batches of texts through it."""

    def __init__(self, directory: Path | str | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        self.directory = Path(directory) if directory is not None else DEFAULT_NER_DIR
        model_path = self.directory / "model.onnx"
        if not model_path.exists():
            raise FileNotFoundError(
                f"NER model not found at {model_path}; it ships with convolens "
                "(retrain with training/ner/train.py)"
            )
        config = json.loads((self.directory / "config.json").read_text(encoding="utf-8"))
        self.labels: list[str] = list(config["labels"])
        self.index = {label: i for i, label in enumerate(self.labels)}
        self.tokenizer = Tokenizer.from_file(str(self.directory / "tokenizer.json"))
        self.tokenizer.no_truncation()
        self.tokenizer.no_padding()
        cls_id, sep_id = self.tokenizer.token_to_id("[CLS]"), self.tokenizer.token_to_id("[SEP]")
        if cls_id is None or sep_id is None:
            raise ValueError(f"{self.directory}: tokenizer.json has no [CLS]/[SEP] tokens")
        self._special = (cls_id, sep_id)
        options = ort.SessionOptions()
        options.intra_op_num_threads = int(os.environ.get("CONVOLENS_NER_THREADS", "1"))
        self.session = ort.InferenceSession(
            str(model_path), options, providers=["CPUExecutionProvider"]
        )
        digest = hashlib.sha256(model_path.read_bytes()).hexdigest()[:8]
        self.model_id = f"convolens-ner-minilm-{digest}"

    def _logits(self, sequences: list[list[int]]) -> list[np.ndarray]:
        """Label probabilities per token for token-id sequences (each <= _WINDOW + 2)."""
        out: list[np.ndarray] = [np.empty(0)] * len(sequences)
        order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
        for start in range(0, len(order), 32):
            index = order[start : start + 32]
            width = max(len(sequences[i]) for i in index)
            ids = np.zeros((len(index), width), dtype=np.int64)
            mask = np.zeros((len(index), width), dtype=np.int64)
            for row, i in enumerate(index):
                ids[row, : len(sequences[i])] = sequences[i]
                mask[row, : len(sequences[i])] = 1
            logits = self.session.run(["logits"], {"input_ids": ids, "attention_mask": mask})[0]
            logits = logits - logits.max(-1, keepdims=True)
            probs = np.exp(logits)
            probs /= probs.sum(-1, keepdims=True)
            for row, i in enumerate(index):
                out[i] = probs[row, : len(sequences[i])]
        return out

    def _token_probs(self, encodings: list[Any]) -> list[np.ndarray]:
        """Per-token probabilities of whole encodings (special tokens included), long ones
        read in overlapping windows, each token taken from the window it sits deepest in."""
        cls_id, sep_id = self._special
        pieces: list[list[int]] = []
        # per encoding: (piece index, window start in the body, keep from, keep to)
        plan: list[list[tuple[int, int, int, int]]] = []
        for enc in encodings:
            body = enc.ids[1:-1]
            starts = list(range(0, max(1, len(body) - _WINDOW + _STRIDE), _STRIDE))
            margin = (_WINDOW - _STRIDE) // 2
            windows = []
            for w, begin in enumerate(starts):
                pieces.append([cls_id, *body[begin : begin + _WINDOW], sep_id])
                # Keep the middle of each window: the first from 0, the last to the end.
                lo = 0 if w == 0 else begin + margin
                hi = len(body) if w == len(starts) - 1 else begin + margin + _STRIDE
                windows.append((len(pieces) - 1, begin, lo, hi))
            plan.append(windows)
        results = self._logits(pieces)
        out = []
        for enc, windows in zip(encodings, plan, strict=True):
            probs = np.zeros((len(enc.ids), len(self.labels)), dtype=np.float32)
            for piece, begin, lo, hi in windows:
                for t in range(lo, hi):
                    probs[t + 1] = results[piece][t - begin + 1]
            out.append(probs)
        return out

    def words(self, texts: list[str]) -> list[list[TaggedWord]]:
        """Each text's words (character spans) with their label probabilities."""
        encodings = self.tokenizer.encode_batch(texts)
        token_probs = self._token_probs(encodings)
        out: list[list[TaggedWord]] = []
        for enc, probs in zip(encodings, token_probs, strict=True):
            tagged: list[TaggedWord] = []
            seen: dict[int, int] = {}
            for t, word_id in enumerate(enc.word_ids):
                if word_id is None:
                    continue
                start, end = enc.offsets[t]
                if word_id in seen:  # a later sub-word: extend the word's span
                    first = tagged[seen[word_id]]
                    tagged[seen[word_id]] = TaggedWord(first.start, end, first.probs)
                    continue
                seen[word_id] = len(tagged)
                tagged.append(TaggedWord(start, end, probs[t]))
            out.append(tagged)
        return out

    def entities(self, texts: list[str]) -> list[list[tuple[int, int, str, float]]]:
        """Each text's entities as (start, end, type, mean probability), by the argmax tag of
        each word (an I- tag after O or another type opens an entity, as conlleval reads)."""
        out = []
        for words in self.words(texts):
            found: list[tuple[int, int, str, float]] = []
            current: list[Any] | None = None  # [start, end, type, probabilities]
            for word in words:
                prefix, _, kind = self.labels[int(word.probs.argmax())].partition("-")
                if current is not None and (prefix != "I" or kind != current[2]):
                    found.append((current[0], current[1], current[2], float(np.mean(current[3]))))
                    current = None
                if prefix == "B" or (prefix == "I" and current is None):
                    current = [word.start, word.end, kind, [float(word.probs.max())]]
                elif prefix == "I" and current is not None:
                    current[1] = word.end
                    current[3].append(float(word.probs.max()))
            if current is not None:
                found.append((current[0], current[1], current[2], float(np.mean(current[3]))))
            out.append(found)
        return out

    def entity_spans(self, texts: list[str]) -> list[list[tuple[int, int, str, float]]]:
        """Each text's entities as (start, end, type, confidence) by `decode_spans`;
        confidence is the span's mean 1 - P(O)."""
        out: list[list[tuple[int, int, str, float]]] = []
        for words in self.words(texts):
            if not words:
                out.append([])
                continue
            probs = np.stack([w.probs for w in words])
            found = []
            for first, end, kind in decode_spans(self, probs):
                inside = 1.0 - float(probs[first:end, self.index["O"]].mean())
                found.append((words[first].start, words[end - 1].end, kind, round(inside, 4)))
            out.append(found)
        return out

    def tag_words(self, words: list[str]) -> tuple[list[str], list[np.ndarray]]:
        """Argmax tags and probabilities for an already tokenised sentence (evaluation)."""
        return self.tag_batch([words])[0]

    def tag_batch(self, sentences: list[list[str]]) -> list[tuple[list[str], list[np.ndarray]]]:
        encodings = self.tokenizer.encode_batch(sentences, is_pretokenized=True)
        token_probs = self._token_probs(encodings)
        out = []
        for enc, probs, words in zip(encodings, token_probs, sentences, strict=True):
            per_word: list[np.ndarray | None] = [None] * len(words)
            for t, word_id in enumerate(enc.word_ids):
                if word_id is not None and per_word[word_id] is None:
                    per_word[word_id] = probs[t]
            blank = np.eye(len(self.labels), dtype=np.float32)[0]  # words with no pieces: O
            filled = [p if p is not None else blank for p in per_word]
            out.append(([self.labels[int(p.argmax())] for p in filled], filled))
        return out


@functools.lru_cache(maxsize=2)
def shared_ner(directory: str | None = None) -> NerModel:
    """One loaded model per process (PII and entities borrow the same one)."""
    return NerModel(directory)


def decode_spans(model: NerModel, probs: np.ndarray) -> list[tuple[int, int, str]]:
    """(first word, end word, type) entities from per-word label probabilities.

    A word is inside an entity when P(O) < 0.5; a word whose argmax is a B- tag starts a
    new one; the type is the best mean (B + I) probability over the span's words. Argmax
    per word splits "Bank of England" when one word leans LOC; the vote keeps it whole
    (CoNLL-2003 dev ORG F1 0.846 against 0.840 by argmax; eval/entities.py). A list of
    organisation suffixes ("plc", "GmbH", "Holdings", ...) on top changed nothing there
    (the model already reads them) or cost F1 ("Bank", "Group": "West Bank"), so none is
    applied.
    """
    labels = model.labels
    kinds = sorted({label[2:] for label in labels if label != "O"})
    outside = probs[:, model.index["O"]]
    by_kind = np.stack(
        [probs[:, model.index[f"B-{k}"]] + probs[:, model.index[f"I-{k}"]] for k in kinds], 1
    )
    best = probs.argmax(1)
    spans: list[tuple[int, int, str]] = []
    i, n = 0, len(probs)
    while i < n:
        if outside[i] >= 0.5:
            i += 1
            continue
        j = i + 1
        while j < n and outside[j] < 0.5 and not labels[int(best[j])].startswith("B-"):
            j += 1
        kind = kinds[int(by_kind[i:j].mean(0).argmax())]
        spans.append((i, j, kind))
        i = j
    return spans
