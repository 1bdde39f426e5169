"""Realtime conversation intelligence: live transcripts, insights and alerts as a call runs.

`StreamSession` is the engine behind the `WS /v1/stream` route (docs/streaming.md): it
takes a `start` message, binary PCM16 audio frames and text messages, and emits events
(interim and final transcripts, sentiment, questions, action items, tracker hits, topics,
alerts). `RealtimeModels` holds the models every session shares; create it once per
process (`shared_models()`). Importing this package loads no model.
"""

from __future__ import annotations

from convolens.realtime.config import RealtimeConfig, RealtimeModels, shared_models
from convolens.realtime.events import ServerEvent, StartMessage, TextMessage, parse_client_message
from convolens.realtime.session import StreamSession

__all__ = [
    "RealtimeConfig",
    "RealtimeModels",
    "ServerEvent",
    "StartMessage",
    "StreamSession",
    "TextMessage",
    "parse_client_message",
    "shared_models",
]
