"""Script adherence on live calls: a required step missed is an alert while the call runs.

The scorecard's criteria marked `required_step: true` are followed turn by turn:

- an `order` step ("verify identity before discussing the account") fires the moment the
  later step is said with no earlier required step before it;
- a `say` step in the speaker's first N turns ("greets in the first 2 turns") fires when
  the speaker's N-th turn passes without it.

Each fires once per call. The same matching as batch scoring (`judges.Transcript.find`:
phrases, then meaning against the example sentences) runs on each new utterance with the
vector the stream already computed. Conditions that the stream cannot know yet (queue,
conversation type) are not checked live; channels and mentions are.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from convolens.model import Channel, Conversation, Participant, Role, SourceInfo, Utterance
from convolens.scorecards.definition import (
    Criterion,
    OrderCheck,
    Phrases,
    SayCheck,
    Scorecard,
    load_scorecards,
)
from convolens.scorecards.judges import Match, Transcript

__all__ = ["MissedStep", "ScriptAdherence"]


@dataclass
class MissedStep:
    """One alert: which criterion, why, and the words it points at (if any)."""

    scorecard: str
    criterion: str
    message: str
    severity: str
    utterance_id: str
    start_char: int | None = None
    end_char: int | None = None
    text: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class _State:
    criterion: Criterion
    scorecard: str
    done: bool = False  # fired, or satisfied for good
    seen_first: bool = False
    turns: int = 0
    mentioned: bool = False


class ScriptAdherence:
    """One live session's script state; `update` after each utterance returns missed steps."""

    def __init__(
        self,
        embed: Callable[[list[str]], np.ndarray],
        *,
        channel: Channel | str = Channel.call,
        scorecards: list[Scorecard] | None = None,
        only: tuple[str, ...] | None = ("support",),
    ) -> None:
        cards = scorecards if scorecards is not None else load_scorecards()
        if only is not None and scorecards is None:
            cards = [c for c in cards if c.name in only]
        channel_name = getattr(channel, "value", channel)
        self._embed = embed
        self._example_vectors: dict[tuple[str, ...], np.ndarray] = {}
        self._states = [
            _State(criterion, card.name)
            for card in cards
            for criterion in card.criteria
            if criterion.required_step
            and isinstance(criterion.check, OrderCheck | SayCheck)
            and _live_applicable(criterion, channel_name)
        ]

    def _examples(self, examples: tuple[str, ...]) -> np.ndarray:
        # Cached on the instance (a functools cache would keep every session alive).
        if examples not in self._example_vectors:
            self._example_vectors[examples] = np.asarray(self._embed(list(examples)))
        return self._example_vectors[examples]

    def _find(
        self, what: Phrases, uid: str, text: str, role: Role, vector: np.ndarray | None
    ) -> Match | None:
        if what.speaker != "any" and role != what.speaker:
            return None
        participant = Participant(participant_id="p", role=role)
        conversation = Conversation.model_construct(
            channel=Channel.call,
            source=SourceInfo(system="stream"),
            participants=[participant],
            utterances=[Utterance.model_construct(participant_id="p", text=text, internal=False)],
        )
        transcript = Transcript(
            conversation,
            [uid],
            None if vector is None else np.asarray(vector, dtype=np.float32)[None, :],
            [],
            embed_examples=self._examples,
        )
        found = transcript.find(what, [0])
        return found[0] if found else None

    def update(
        self, uid: str, text: str, role: Role, vector: np.ndarray | None
    ) -> list[MissedStep]:
        out: list[MissedStep] = []
        for state in self._states:
            if state.done:
                continue
            criterion = state.criterion
            condition = criterion.applies_when
            if condition is not None and condition.mentions is not None and not state.mentioned:
                state.mentioned = (
                    self._find(condition.mentions, uid, text, role, vector) is not None
                )
            check = criterion.check
            if isinstance(check, OrderCheck):
                out += self._order(state, check, uid, text, role, vector)
            elif isinstance(check, SayCheck):
                out += self._say(state, check, uid, text, role, vector)
        return out

    def _gated(self, state: _State) -> bool:
        """A criterion that applies only once its topic came up waits for it."""
        condition = state.criterion.applies_when
        return bool(condition and condition.mentions is not None and not state.mentioned)

    def _order(
        self,
        state: _State,
        check: OrderCheck,
        uid: str,
        text: str,
        role: Role,
        vector: np.ndarray | None,
    ) -> list[MissedStep]:
        first = self._find(check.first, uid, text, role, vector)
        then = self._find(check.then, uid, text, role, vector)
        if first is not None and (then is None or first.start < then.start):
            state.seen_first = True
        if then is None or state.seen_first or self._gated(state):
            if state.seen_first:
                state.done = True  # in order: nothing left to watch
            return []
        state.done = True
        quoted = text[then.start : then.end]
        return [
            MissedStep(
                scorecard=state.scorecard,
                criterion=state.criterion.id,
                message=f"Missed required step: {state.criterion.description} "
                f'("{quoted}" came first)',
                severity="high" if state.criterion.auto_fail else "medium",
                utterance_id=uid,
                start_char=then.start,
                end_char=then.end,
                text=quoted,
                details={"kind": "order", "matched": then.how},
            )
        ]

    def _say(
        self,
        state: _State,
        check: SayCheck,
        uid: str,
        text: str,
        role: Role,
        vector: np.ndarray | None,
    ) -> list[MissedStep]:
        limit = check.window.first_turns
        if limit is None or (check.speaker != "any" and role != check.speaker):
            return []
        state.turns += 1
        if self._find(check, uid, text, role, vector) is not None:
            state.done = True
            return []
        if state.turns < limit or self._gated(state):
            return []
        state.done = True
        return [
            MissedStep(
                scorecard=state.scorecard,
                criterion=state.criterion.id,
                message=f"Missed required step: {state.criterion.description}",
                severity="high" if state.criterion.auto_fail else "low",
                utterance_id=uid,
                details={"kind": "say", "turns": state.turns},
            )
        ]


def _live_applicable(criterion: Criterion, channel: str) -> bool:
    condition = criterion.applies_when
    if condition is None:
        return True
    if condition.channels is not None and channel not in condition.channels:
        return False
    # Queue and conversation type are not known while the call runs: such a criterion
    # is left to the scoring of the stored call.
    return condition.queues is None and condition.conversation_types is None
