"""Migration 13: languages identified at ingest (enrich/language.py) and enrolled voices
(speech/identity.py, speech/voices.py), both #14.

`utterances.language`: each utterance's (ISO 639-1). `conversations.detected_language`:
the conversation's as identified (a declared `language` if the source gave one, else the
vote of its utterances); `conversations.language` stays what the source declared, so a
stored conversation reads back, and hashes, exactly as it was ingested.

`speaker_voices`: one CAM++ voice print per enrolled name (an agent), with the model it
was made with; diarized speakers that match one take its name and role.
"""

from __future__ import annotations

from convolens.store.migrations import Migration

MIGRATION = Migration(
    13,
    "languages and voices",
    """
ALTER TABLE utterances ADD COLUMN language VARCHAR;
ALTER TABLE conversations ADD COLUMN detected_language VARCHAR;
CREATE TABLE speaker_voices (
    name VARCHAR PRIMARY KEY,
    role VARCHAR NOT NULL,
    embedding FLOAT[] NOT NULL,
    model VARCHAR NOT NULL,
    speech_seconds DOUBLE NOT NULL,
    source_sha256 VARCHAR,
    enrolled_at TIMESTAMPTZ NOT NULL
);
""",
)
