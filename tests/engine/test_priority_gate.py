"""The live-before-batch gate (engine/priority.py): batch work waits while live work is
pending, goes on when it ends, and is never held longer than its bound (no starvation)."""

from __future__ import annotations

import os
import threading

from convolens.engine.priority import LiveActivity, nice_current_thread


def test_batch_waits_for_pending_live_work_then_goes_on() -> None:
    gate = LiveActivity(enabled=True, max_wait_s=600)
    gate.begin()
    entered, passed = threading.Event(), threading.Event()

    def batch() -> None:
        entered.set()
        gate.yield_to_live()
        passed.set()

    worker = threading.Thread(target=batch)
    worker.start()
    entered.wait(30)
    assert not passed.is_set()  # a 600 s bound: only the end of the live work frees it
    gate.end()
    worker.join(30)
    assert passed.is_set() and gate.yields == 1 and gate.pending == 0


def test_batch_is_held_at_most_its_bound_while_live_work_never_ends() -> None:
    gate = LiveActivity(enabled=True, max_wait_s=0.05)
    with gate.live():
        for _ in range(3):
            gate.yield_to_live()  # returns although the live call is still pending
        assert gate.pending == 1 and gate.yields == 3
    assert gate.pending == 0


def test_without_live_work_or_when_off_batch_never_waits() -> None:
    idle = LiveActivity(enabled=True)
    assert idle.yield_to_live() == 0.0 and idle.yields == 0
    off = LiveActivity(enabled=False, max_wait_s=600)
    off.begin()
    assert off.yield_to_live() == 0.0 and off.yields == 0


def test_a_niced_thread_passes_its_priority_to_the_threads_it_starts() -> None:
    seen: dict[str, int] = {}

    def child() -> None:
        seen["child"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())

    def batch() -> None:
        base = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
        assert nice_current_thread(5)
        seen["batch"] = os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) - base
        inner = threading.Thread(target=child)
        inner.start()
        inner.join()
        seen["child"] -= base

    main_before = os.getpriority(os.PRIO_PROCESS, threading.get_native_id())
    worker = threading.Thread(target=batch)
    worker.start()
    worker.join()
    assert seen["batch"] == min(5, 19 - main_before) and seen["child"] == seen["batch"]
    # The calling (live) thread keeps its priority.
    assert os.getpriority(os.PRIO_PROCESS, threading.get_native_id()) == main_before
