"""Live streams before batch jobs: one process-wide gate that batch work yields at.

A server runs live decoding (the WebSocket engine's own threads) and batch transcription
(the job workers) in one process, on the same few cores. Under load a live final then
waited behind a batch decode (1-32 s after the end of speech, issue #14). Three measures
give live work the CPU, each where it acts:

- Live work has its own worker threads (`CONVOLENS_STREAM_WORKERS`) and its own Whisper
  model with its own thread count (`CONVOLENS_STREAM_ASR_THREADS`), so it never queues
  behind a job in a shared pool.
- `LIVE` counts the live engine calls queued or running. Batch transcription calls
  `LIVE.yield_to_live()` between units of work (each Whisper segment, before
  diarization): while any live stream has audio pending it waits, for at most
  `max_wait_s` per call, so a job keeps moving (one unit per `max_wait_s` at worst) and
  is never starved. Finer-grained pausing is not possible: a CTranslate2 decode cannot
  be interrupted, and its thread count is fixed when the model loads, so "fewer batch
  threads while live is busy" would cost the batch all the time, not only under load.
- Job worker threads lower their own scheduling priority (`nice_current_thread`): on
  Linux a thread's nice value is its own and the threads it creates inherit it, so the
  batch Whisper model (loaded lazily by the job thread; CTranslate2's worker thread and
  its libgomp pool are created then) and the diarizer's torch threads run niced while the
  live decoder's threads do not. The OS then prefers live decoding during a batch decode,
  which the gate alone cannot reach.

All of it is in-process: with the Ray engine (docs/scale.md) jobs transcribe in other
processes and the gate does not apply to them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from collections.abc import Iterator

__all__ = ["LIVE", "LiveActivity", "nice_current_thread"]

log = logging.getLogger("convolens.engine.priority")


class LiveActivity:
    """How many live engine calls are pending; batch work waits while there are any."""

    def __init__(self, *, enabled: bool = True, max_wait_s: float = 2.0) -> None:
        self.enabled = enabled
        self.max_wait_s = max_wait_s
        self._cond = threading.Condition()
        self._pending = 0
        # What the gate did (the benchmark and the tests read these).
        self.yields = 0
        self.waited_s = 0.0

    @property
    def pending(self) -> int:
        return self._pending

    def configure(self, *, enabled: bool, max_wait_s: float) -> None:
        with self._cond:
            self.enabled = enabled
            self.max_wait_s = max_wait_s
            self._cond.notify_all()

    def begin(self) -> None:
        """A live call was queued (call `end()` when it finished, whatever happened)."""
        with self._cond:
            self._pending += 1

    def end(self) -> None:
        with self._cond:
            self._pending = max(0, self._pending - 1)
            if self._pending == 0:
                self._cond.notify_all()

    @contextlib.contextmanager
    def live(self) -> Iterator[None]:
        self.begin()
        try:
            yield
        finally:
            self.end()

    def yield_to_live(self) -> float:
        """Wait while live work is pending, at most `max_wait_s`; the seconds waited."""
        if not self.enabled or self._pending == 0:
            return 0.0
        started = time.monotonic()
        with self._cond:
            self._cond.wait_for(lambda: self._pending == 0 or not self.enabled, self.max_wait_s)
            waited = time.monotonic() - started
            self.yields += 1
            self.waited_s += waited
        return waited


# The one gate of this process: the stream route marks live work, batch work yields.
LIVE = LiveActivity(enabled=False)


def nice_current_thread(increment: int) -> bool:
    """Lower the calling thread's priority by `increment` (Linux: per thread, inherited by
    the threads it starts). False where the platform does not allow it."""
    if increment <= 0:
        return False
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + increment))
    except (AttributeError, OSError) as exc:  # not Linux, or not permitted
        log.info("could not lower the batch thread's priority: %s", exc)
        return False
    return True
