"""Concurrency: no lost outcomes, no deadlock from re-entrant listeners, safe after fork()."""

from __future__ import annotations

import itertools
import os
import signal
import threading

import pytest

from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig, HealthTransition, TransitionKind
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome

THREADS = 8
RECORDS = 20_000
KEYS = [ModelKey(provider="openai", model=f"m{i}") for i in range(3)]
S, F, N = Outcome.SUCCESS, Outcome.FAILURE, Outcome.NEUTRAL
OUTCOMES = [S, F, S, F, F, N]


def run_threads(target: object, n: int = THREADS) -> None:
    threads = [threading.Thread(target=target, args=(i,)) for i in range(n)]  # type: ignore[arg-type]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread is stuck (deadlock?)"


def test_no_outcome_is_lost_under_contention() -> None:
    registry = HealthRegistry(config=BreakerConfig(open_wait_s=0.0, max_open_wait_s=0.0))
    transitions: list[HealthTransition] = []
    registry.subscribe(transitions.append)

    def work(thread: int) -> None:
        for i in range(RECORDS):
            registry.record(KEYS[(i + thread) % len(KEYS)], OUTCOMES[(i // 3 + thread) % len(OUTCOMES)])

    run_threads(work)
    expected: dict[tuple[ModelKey, Outcome], int] = {}
    for thread in range(THREADS):
        for i in range(RECORDS):
            k = (KEYS[(i + thread) % len(KEYS)], OUTCOMES[(i // 3 + thread) % len(OUTCOMES)])
            expected[k] = expected.get(k, 0) + 1
    states = registry.snapshot()
    assert len(states) == len(KEYS)
    total = 0
    for state in states:
        for (operation, outcome), count in state.outcome_totals.items():
            assert operation == "inference"
            assert count == expected[(state.key, outcome)]
            total += count
    assert total == THREADS * RECORDS
    # Delivered in order: per key, each breaker transition starts where the previous one ended.
    breaker_kinds = {
        TransitionKind.BREAKER_OPENED,
        TransitionKind.HALF_OPEN,
        TransitionKind.HALF_OPEN_FAILED,
        TransitionKind.RECOVERED,
    }
    assert transitions
    for model_key in KEYS:
        chain = [t for t in transitions if t.key == model_key and t.kind in breaker_kinds]
        assert chain
        for earlier, later in itertools.pairwise(chain):
            assert later.before is earlier.after, (earlier.kind, later.kind)


def test_listener_recording_from_callback_does_not_deadlock() -> None:
    registry = HealthRegistry(config=BreakerConfig(jitter=0.0))
    echo_key = ModelKey(provider="anthropic", model="echo")
    calls = 0

    def listener(t: HealthTransition) -> None:
        nonlocal calls
        calls += 1
        # Re-enters record(), get() and snapshot() from inside the callback.
        registry.record(echo_key, Outcome.SUCCESS)
        registry.get(provider="anthropic", model="echo")
        registry.snapshot()

    registry.subscribe(listener)

    def work(thread: int) -> None:
        k = ModelKey(provider="openai", model=f"t{thread}")
        for _ in range(50):
            registry.record(k, Outcome.FAILURE)

    run_threads(work, 4)
    assert calls >= 8  # a first_failure and a breaker_opened per thread's key
    state = registry.get(provider="anthropic", model="echo")
    assert state is not None
    assert state.outcome_totals[("inference", Outcome.SUCCESS)] == calls


@pytest.mark.integration
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # fork() in a multi-threaded process
def test_child_can_record_after_fork_while_a_thread_held_the_lock() -> None:
    registry = HealthRegistry()
    k = ModelKey(provider="openai", model="gpt-4o")
    registry.record(k, Outcome.SUCCESS)
    holding = threading.Event()
    release = threading.Event()

    def hold_lock() -> None:
        with registry._lock:
            holding.set()
            release.wait(10)

    holder = threading.Thread(target=hold_lock)
    holder.start()
    assert holding.wait(10)
    pid = os.fork()
    if pid == 0:  # child: the holder thread does not exist here
        code = 1
        signal.alarm(10)  # a deadlocked child dies instead of hanging the parent's waitpid
        try:
            registry.record(k, Outcome.FAILURE)
            state = registry.get(provider="openai", model="gpt-4o")
            if state is not None and state.outcome_totals.get(("inference", Outcome.FAILURE)) == 1:
                code = 0
        finally:
            os._exit(code)
    release.set()
    holder.join(10)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    parent_state = registry.get(provider="openai", model="gpt-4o")
    assert parent_state is not None
    assert ("inference", Outcome.FAILURE) not in parent_state.outcome_totals
