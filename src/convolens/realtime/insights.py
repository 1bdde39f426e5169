"""Live insights: each new utterance's sentiment, questions, action items and tracker hits,
running topics, and alerts, from the same components the batch pipeline runs.

Nothing is re-implemented: the utterance goes through `SentimentComponent`,
`TrackerComponent` and `DialogueActComponent` (loaded once per process, `InsightModels`)
as a small `Doc`, and escalation cues are `resolution.find_cues`. Cost stays flat as a
call grows: the new utterance is embedded once (sentiment and trackers share the vector
through `Doc.cache`), spaCy parses only the new text (the two previous turns, needed to
find whom a request is addressed to, reuse their cached parses), and topics (KeyBERT over
the cached utterance vectors of the last `topics_window` turns) run every `topics_every`
utterances, not on each.

Alerts are `alerts.AlertRules`, fed each utterance's sentiment and default-tracker hits
(the rules are defined on the default trackers, whatever trackers a session asks for).
"Customer" means the participants whose role is customer; when nobody has that role,
participants of unknown role count (a chat stream that declared no roles).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime
from typing import Any

import numpy as np

from convolens.enrich.base import Annotation, Doc
from convolens.enrich.embeddings import CACHE_KEY, MODEL_KEY, SentenceEmbedder, shared_embedder
from convolens.enrich.nlp import PARSED_KEY, PARSED_MODEL_KEY, spacy_model_id
from convolens.enrich.trackers import TrackerDefinition
from convolens.model import Channel, Conversation, Participant, Role, SourceInfo, Utterance
from convolens.realtime.alerts import AlertConfig, AlertRules, script_alerts
from convolens.realtime.events import (
    ActionItemEvent,
    QuestionEvent,
    SentimentEvent,
    ServerEvent,
    TopicPhrase,
    TopicsEvent,
    TrackerEvent,
)
from convolens.scorecards.live import ScriptAdherence

__all__ = ["InsightModels", "LiveInsights"]


class InsightModels:
    """The enrichment components, loaded once per process and shared by every session."""

    def __init__(self, embedder: SentenceEmbedder | None = None, nlp: Any | None = None) -> None:
        from convolens.enrich.dialogue_acts import DialogueActComponent
        from convolens.enrich.keyphrases import KeyphraseComponent
        from convolens.enrich.sentiment import SentimentComponent
        from convolens.enrich.trackers import TrackerComponent

        self.embedder = embedder or shared_embedder()
        self.sentiment = SentimentComponent(embedder=self.embedder)
        self.dialogue = DialogueActComponent(nlp=nlp)
        self.spacy_id = spacy_model_id(self.dialogue.nlp)
        self.trackers = TrackerComponent(embedder=self.embedder)
        self.topics = KeyphraseComponent(embedder=self.embedder)
        # spaCy and KeyBERT are not documented as thread-safe; the work under it is ~10-40 ms.
        self.lock = threading.Lock()
        self._custom: OrderedDict[str, Any] = OrderedDict()

    def trackers_for(self, definitions: list[TrackerDefinition] | None) -> Any:
        """The default trackers, or a component for a session's own (a few cached)."""
        if definitions is None:
            return self.trackers
        from convolens.enrich.trackers import TrackerComponent

        key = "\x1f".join(d.model_dump_json() for d in definitions)
        with self.lock:
            if key not in self._custom:
                self._custom[key] = TrackerComponent(
                    {"definitions": [d.model_dump() for d in definitions]}, embedder=self.embedder
                )
                while len(self._custom) > 32:
                    self._custom.popitem(last=False)
            self._custom.move_to_end(key)
            return self._custom[key]


class LiveInsights:
    """One session's insight state: history, cached vectors and parses, alert rules."""

    def __init__(
        self,
        models: InsightModels,
        *,
        session_id: str,
        participants: list[Participant],
        started_at: datetime,
        channel: Channel,
        enabled: set[str],
        trackers: list[TrackerDefinition] | None = None,
        alerts: AlertConfig | None = None,
        topics_every: int = 3,
        topics_window: int = 200,
    ) -> None:
        self.models = models
        self.session_id = session_id
        self.participants = {p.participant_id: p for p in participants}
        self.started_at = started_at
        self.channel = channel
        self.enabled = enabled
        self.custom_trackers = models.trackers_for(trackers) if trackers is not None else None
        self.alerts = AlertRules(alerts or AlertConfig())
        # A scorecard's required steps, followed turn by turn (scorecards/live.py).
        script = self.alerts.config.script_scorecard
        self.script = (
            ScriptAdherence(models.embedder.embed, channel=channel, only=(script,))
            if script and channel.value in self.alerts.config.script_channels
            else None
        )
        self.topics_every = topics_every
        self.topics_window = topics_window
        self._history: list[tuple[str, Utterance]] = []
        self._vectors: list[np.ndarray] = []
        self._parses: OrderedDict[str, Any] = OrderedDict()
        self._last_topics: list[str] = []
        self._since_topics = 0

    def add_participant(self, participant: Participant) -> None:
        self.participants[participant.participant_id] = participant

    def _is_customer(self, role: Role) -> bool:
        if role == Role.customer:
            return True
        anyone = any(p.role == Role.customer for p in self.participants.values())
        return role == Role.unknown and not anyone

    def _doc(self, items: list[tuple[str, Utterance]], vectors: np.ndarray | None) -> Doc:
        # model_construct: these utterances were validated when they were made.
        conversation = Conversation.model_construct(
            conversation_id=self.session_id,
            channel=self.channel,
            source=SourceInfo(system="stream"),
            started_at=self.started_at,
            participants=list(self.participants.values()),
            utterances=[u for _, u in items],
        )
        doc = Doc(self.session_id, 1, conversation, [uid for uid, _ in items])
        if vectors is not None:
            doc.cache[CACHE_KEY] = vectors
            doc.cache[MODEL_KEY] = self.models.embedder.model_id
        return doc

    def utterance(self, uid: str, utterance: Utterance, t: float) -> list[ServerEvent]:
        """Insight events for a new utterance (and the alerts it raises), in that order."""
        if utterance.internal or not utterance.text.strip():
            return []
        m, on = self.models, self.enabled
        participant = self.participants[utterance.participant_id]
        about: dict[str, Any] = {
            "utterance_id": uid,
            "participant_id": participant.participant_id,
            "speaker": participant.name,
            "role": participant.role,
            "t": t,
        }
        events: list[ServerEvent] = []
        with m.lock:
            vector = m.embedder.embed([utterance.text])
            self._history.append((uid, utterance))
            self._vectors.append(vector[0])
            if len(self._history) > self.topics_window + 50:  # only the latest are read
                del self._history[:50], self._vectors[:50]
            doc = self._doc([(uid, utterance)], vector)
            sentiment = None
            if on & {"sentiment", "alerts"}:
                sentiment = _first(m.sentiment([doc])[0], "sentiment.utterance")
            default_hits = m.trackers([doc])[0] if on & {"trackers", "alerts"} else []
            if "trackers" in on:
                hits = default_hits
                if self.custom_trackers is not None:
                    hits = self.custom_trackers([doc])[0]
                events += [TrackerEvent(**about, **_tracker(a, utterance.text)) for a in hits]
            if on & {"questions", "action_items"}:
                events += self._acts(uid, utterance, about)
        if sentiment is not None and "sentiment" in on:
            value = sentiment.value
            events.insert(0, SentimentEvent(**about, **value))
        if "alerts" in on:
            role = participant.role
            events += self.alerts.update(
                uid,
                utterance.text,
                role,
                self._is_customer(role),
                sentiment.value if sentiment is not None else None,
                default_hits,
                t,
            )
            if self.script is not None:
                with m.lock:  # the shared embedder embeds the steps' examples on first use
                    missed = self.script.update(uid, utterance.text, participant.role, vector[0])
                events += script_alerts(missed, t)
        return events

    def _acts(self, uid: str, utterance: Utterance, about: dict[str, Any]) -> list[ServerEvent]:
        # Two previous turns give a request its addressee; their parses are cached.
        items = [*self._history[-3:-1], (uid, utterance)]
        doc = self._doc(items, None)
        doc.cache[PARSED_KEY] = [self._parses.get(i) for i, _ in items]
        doc.cache[PARSED_MODEL_KEY] = self.models.spacy_id
        found = self.models.dialogue([doc])[0]
        self._parses[uid] = doc.cache[PARSED_KEY][-1]
        while len(self._parses) > 3:
            self._parses.popitem(last=False)
        events: list[ServerEvent] = []
        for a in found:
            if a.utterance_id != uid or not a.evidence:
                continue
            span: dict[str, Any] = {
                "start_char": a.evidence[0].start_char,
                "end_char": a.evidence[0].end_char,
            }
            v = a.value
            if a.label == "question" and "questions" in self.enabled:
                events.append(
                    QuestionEvent(
                        **about, **span, text=v["text"], kind=v["kind"], confidence=a.confidence
                    )
                )
            elif a.label == "action_item" and "action_items" in self.enabled:
                owner = self.participants.get(v.get("owner") or "")
                events.append(
                    ActionItemEvent(
                        **about,
                        **span,
                        kind=v["kind"],
                        text=v["text"],
                        owner=(owner.name or owner.participant_id) if owner else v.get("owner"),
                        owner_role=v.get("owner_role"),
                        requested_by=v.get("requested_by"),
                        due=v.get("due"),
                        due_text=v.get("due_text"),
                        follow_up=bool(v.get("follow_up")),
                        confidence=a.confidence,
                    )
                )
        return events

    def topics(self, t: float, *, force: bool = False) -> list[ServerEvent]:
        """A `topics` event every `topics_every` utterances (or when forced), if they changed."""
        if "topics" not in self.enabled or not self._history:
            return []
        self._since_topics += 0 if force else 1
        if not force and self._since_topics < self.topics_every:
            return []
        self._since_topics = 0
        items = self._history[-self.topics_window :]
        vectors = np.vstack(self._vectors[-self.topics_window :])
        with self.models.lock:
            found = self.models.topics([self._doc(items, vectors)])[0]
        phrases = [
            TopicPhrase(phrase=a.value["phrase"], score=a.value["score"], count=a.value["count"])
            for a in found
            if a.label == "topic.keyphrase"
        ]
        names = [p.phrase for p in phrases]
        if not names or names == self._last_topics:
            return []
        self._last_topics = names
        return [TopicsEvent(t=t, phrases=phrases, utterances=len(items))]


def _first(annotations: list[Annotation], label: str) -> Annotation | None:
    return next((a for a in annotations if a.label == label), None)


def _tracker(a: Annotation, text: str) -> dict[str, Any]:
    v, e = a.value, a.evidence[0] if a.evidence else None
    start, end = (e.start_char, e.end_char) if e else (0, len(text))
    return {
        "tracker": v["tracker"],
        "how": v["match"],
        "text": v.get("text") or text[start:end],
        "phrase": v.get("phrase"),
        "example": v.get("example"),
        "start_char": start,
        "end_char": end,
        "confidence": a.confidence,
    }
