"""Script adherence on a live call: the stream raises an alert the moment a required step
is missed (account details before any identity check), from the example recording."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import webvtt

from convolens.enrich.embeddings import shared_embedder
from convolens.model import Role
from convolens.realtime import RealtimeConfig, RealtimeModels, StreamSession
from convolens.scorecards.live import ScriptAdherence

REPO = Path(__file__).resolve().parents[2]
CALL = REPO / "examples" / "recordings" / "call-20261117-0031.flac"
START = {
    "type": "start",
    "channels": 2,
    "sample_rate": 16000,
    "speakers": [
        {"name": "Leo Martin", "role": "agent", "channel": 0},
        {"name": "Maria Lopez", "role": "customer", "channel": 1},
    ],
    "source_id": "call-20261117-0031",
    "channel_kind": "call",
}


@pytest.fixture(scope="module")
def call_events() -> list[Any]:
    from convolens.speech.decode import decode_audio

    audio = decode_audio(CALL)
    stereo = np.clip(np.stack(audio.channels, axis=1), -1.0, 1.0)
    pcm = (stereo * 32767).astype("<i2").tobytes()
    events: list[Any] = []
    models = RealtimeModels(RealtimeConfig(asr_model="tiny.en")).load()
    session = StreamSession(models, on_event=events.append)
    session.start(START)
    frame = 16000 // 10 * 2 * 2  # 100 ms of stereo PCM16, as fast as it is read
    for offset in range(0, len(pcm), frame):
        session.feed_audio(pcm[offset : offset + frame])
    session.stop()
    return events


def test_live_call_alerts_on_account_talk_before_identity_check(call_events: list[Any]) -> None:
    finals = {e.utterance_id: e for e in call_events if e.type == "transcript.final"}
    script = [e for e in call_events if e.type == "alert" and e.rule == "script_adherence"]
    # One alert: the identity check. The agent did greet ("Thank you for calling").
    assert [a.details["criterion"] for a in script] == ["identity_before_account"]
    alert = script[0]
    assert alert.severity == "medium" and alert.details["scorecard"] == "support"
    (evidence,) = alert.evidence
    assert evidence.text == "your account"
    said = finals[evidence.utterance_id].text
    assert said[evidence.start_char : evidence.end_char] == "your account"
    assert "Let me check your account" in said
    # Raised as the call goes: right after that utterance's final transcript, long before
    # the end of the call.
    position = call_events.index(alert)
    final = call_events.index(finals[evidence.utterance_id])
    between = [e.type for e in call_events[final + 1 : position]]
    assert final < position and "transcript.final" not in between
    later = [e for e in call_events[position:] if e.type == "transcript.final"]
    assert len(later) >= 3
    assert call_events[-1].type == "stopped"
    assert call_events[-1].alerts.get("script_adherence") == 1


def _vtt_turns(name: str, roles: dict[str, Role]) -> list[tuple[str, str, Role]]:
    captions = webvtt.read(str(REPO / "examples" / "calls" / name))
    return [(f"u{i}", c.text, roles[c.voice]) for i, c in enumerate(captions)]


def test_identity_check_first_raises_nothing_and_a_missing_greeting_does() -> None:
    embedder = shared_embedder()
    roles = {"Leo Martin": Role.agent, "Greg Thompson": Role.customer}
    checked = ScriptAdherence(embedder.embed, channel="call")
    missed = []
    for uid, text, role in _vtt_turns("call-20260922-0009.vtt", roles):
        missed += checked.update(uid, text, role, embedder.embed([text])[0])
    # "First I need to verify your identity before I touch anything on the account."
    assert missed == []
    # The same call without its opening: the agent's first two turns do not greet.
    rude = ScriptAdherence(embedder.embed, channel="call")
    turns = _vtt_turns("call-20260922-0009.vtt", roles)[3:]
    found = []
    for uid, text, role in turns:
        found += rude.update(uid, text, role, embedder.embed([text])[0])
    assert [m.criterion for m in found] == ["greeting"]
    assert found[0].details == {"kind": "say", "turns": 2}
