"""The fleet store's parts that need no Redis: URL checks, the codec's refusals, following a transition
decided elsewhere (``ModelState.adopt``), and the Sentry bridge leaving remote transitions alone."""

from __future__ import annotations

import importlib
import json
import random
import sys
from dataclasses import replace

import pytest
from bugsink_server import capturing_sentry, make_transition

from otel_model_health.health.fleet import codec
from otel_model_health.health.model_state import ModelState, Step
from otel_model_health.health.types import BreakerConfig, BreakerState, CallResult, TransitionKind
from otel_model_health.keys import ModelKey
from otel_model_health.option_values import check_redis_url
from otel_model_health.outcomes import Outcome
from otel_model_health.sentry import SentryBridge
from otel_model_health.settings import ConfigurationError, load_settings

K = TransitionKind
KEY = ModelKey(provider="openai", model="gpt-4o", gateway="my|gw")


@pytest.mark.parametrize(
    "url", ["redis://localhost:6379/0", "rediss://u:p@cache.example:6380", "unix:///run/redis.sock"]
)
def test_good_urls(url: str) -> None:
    assert check_redis_url("MODEL_HEALTH_REDIS_URL", url) == url


@pytest.mark.parametrize(
    "url", ["http://localhost:6379", "redis://", "redis://host:99999", "unix://", "localhost:6379", "x"]
)
def test_a_bad_url_names_itself_and_its_source(url: str) -> None:
    with pytest.raises(ConfigurationError, match="MODEL_HEALTH_REDIS_URL"):
        load_settings({"MODEL_HEALTH_REDIS_URL": url})


def test_the_password_never_shows() -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_settings({}, store="http://user:hunter2@host:6379")
    assert "option store" in str(caught.value) and "hunter2" not in str(caught.value)


def test_model_ids_round_trip_and_foreign_ones_are_refused() -> None:
    assert codec.parse_model_id(codec.model_id(KEY)) == KEY
    assert codec.model_id(KEY) == "openai|my%7Cgw|gpt-4o"
    for bad in ("openai|gpt-4o", "a||b", 42, "OpenAI|direct|m", None):
        with pytest.raises(codec.Invalid):
            codec.parse_model_id(bad)


def test_outcome_rows_round_trip_and_bad_rows_are_counted() -> None:
    result = CallResult(Outcome.FAILURE, "inference", "500", None, 500, 0.25, 99.0, None)
    good = codec.encode_outcome(codec.model_id(KEY), result, 1000.0, 999.0, "boom")
    rows = [good, ["x"], [*good[:1], "sideways", *good[2:]], [*good[:6], "NaN", *good[7:]], 7]
    outcomes, ignored = codec.decode_rows(json.dumps(rows).encode(), lambda epoch: epoch - 900.0)
    assert ignored == 4 and len(outcomes) == 1
    remote = outcomes[0]
    assert (remote.key, remote.at) == (KEY, 1000.0)
    assert remote.result.started_at == 99.0 and remote.result.error_message == "boom"
    assert codec.batch_origin(codec.encode_batch("p1", rows).encode())[0] == "p1"
    for payload in (b"no newline", b"\n[]", b"p\nnot json", b"p\n{}"):
        with pytest.raises(codec.Invalid):
            _origin, body = codec.batch_origin(payload)
            codec.decode_rows(body, float)


def test_records_from_scripts_and_messages() -> None:
    record = codec.record_from_fields([b"7", b"open", b"1", b"1700000000.5", b"2", b"breaker_opened", b"p"])
    assert record.transition_kind() is K.BREAKER_OPENED and record.open_until == 1700000000.5
    closed = codec.record_from_fields(["8", "closed", "1", "0", "2", "first_failure", "p"])
    assert closed.transition_kind() is K.FIRST_FAILURE
    for bad in (["7", "ajar", "1", "0", "0", "", ""], ["x", "open", "1", "0", "0", "", ""], ["7"]):
        with pytest.raises(codec.Invalid):
            codec.record_from_fields(bad)
    key_id, message = codec.decode_transition(
        json.dumps(["a|b|c", "3", "closed", "0", "0", "0", "recovered", "p"])
    )
    assert key_id == "a|b|c" and message.kind is K.RECOVERED


def _state() -> tuple[ModelState, list[Step]]:
    config = BreakerConfig(jitter=0.0, open_wait_s=10.0)
    return ModelState(KEY, config, random.Random(1), 0.0), []


def test_adopt_follows_an_opening_and_a_recovery_decided_elsewhere() -> None:
    state, steps = _state()
    state.record(CallResult(Outcome.FAILURE, error_type="500"), 1.0, steps.append)
    state.adopt(K.BREAKER_OPENED, open_until=31.0, level=1, now=2.0, emit=steps.append)
    assert [s.kind for s in steps] == [K.FIRST_FAILURE, K.BREAKER_OPENED]
    assert state.breaker.state is BreakerState.OPEN and state.breaker.open_until == 31.0
    state.adopt(K.BREAKER_OPENED, open_until=35.0, level=1, now=3.0, emit=steps.append)
    assert len(steps) == 2 and state.breaker.open_until == 35.0  # already open: aligned, no new step
    state.adopt(K.RECOVERED, open_until=0.0, level=1, now=4.0, emit=steps.append)
    assert steps[-1].kind is K.RECOVERED and state.breaker.state is BreakerState.CLOSED
    assert not state.in_incident


def test_adopt_a_first_failure_without_a_failure_of_its_own_changes_nothing() -> None:
    # Otherwise the incident would "clear" at once and this process would propose a recovery.
    state, steps = _state()
    state.adopt(K.FIRST_FAILURE, open_until=0.0, level=0, now=1.0, emit=steps.append)
    state.advance(2.0, steps.append)
    assert steps == [] and not state.in_incident


def test_the_bridge_reports_only_what_its_process_won() -> None:
    with capturing_sentry() as transport:
        bridge = SentryBridge()
        for kind in (K.FIRST_FAILURE, K.BREAKER_OPENED):
            bridge(replace(make_transition(kind), remote=True))
        assert bridge.flush(2.0)
        assert transport.events == []
        bridge(replace(make_transition(K.RECOVERED), remote=True))  # re-arms as a local recovery would
        bridge(make_transition(K.BREAKER_OPENED))
        assert bridge.flush(2.0)
        assert [e["tags"]["transition"] for e in transport.events] == ["breaker_opened"]
        bridge.close()


def test_without_redis_py_the_error_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    import otel_model_health as omh

    configure_module = importlib.import_module("otel_model_health.configure")
    from otel_model_health.health.fleet import RedisStore
    from otel_model_health.health.registry import HealthRegistry

    monkeypatch.setitem(sys.modules, "redis", None)  # `import redis` raises ImportError
    with pytest.raises(ImportError, match=r"otel_model_health\[redis\]"):
        omh.configure(store="redis://127.0.0.1:1/0", sdk_disabled=True)
    assert configure_module.current() is None  # nothing was started
    with pytest.raises(ImportError, match=r"otel_model_health\[redis\]"):
        HealthRegistry(store=RedisStore("redis://127.0.0.1:1/0"))


def test_a_remote_trial_does_not_take_back_this_process_permit() -> None:
    state, steps = _state()
    state.force_open(0.0, 1.0, steps.append)
    state.advance(1.0, steps.append)
    assert state.breaker.state is BreakerState.HALF_OPEN
    mine = state.breaker.hand_out_permit(KEY, 1.0, lambda permit: None)
    assert mine is not None
    state.record_remote(CallResult(Outcome.SUCCESS, started_at=1.0), 1.1, steps.append)
    assert mine.tracked and state.breaker.trials_done == 1  # counted as the fleet's trial, ours still out
    state.record(CallResult(Outcome.SUCCESS, started_at=1.0), 1.2, steps.append)
    assert not mine.tracked and state.breaker.trials_done == 2
    state.record_remote(CallResult(Outcome.FAILURE, started_at=1.0), 1.3, steps.append)
    assert steps[-1].kind is K.HALF_OPEN_FAILED


def test_a_streams_first_chunk_time_reaches_the_other_processes() -> None:
    # A latency SLO on the time to first chunk judges the other processes' streams too (docs/slo.md).
    result = CallResult(Outcome.SUCCESS, "inference", latency_s=9.0, first_chunk_s=0.4)
    row = codec.encode_outcome(codec.model_id(KEY), result, 1000.0, None, None)
    older = row[:10]  # a version that did not send it: still read, without it
    outcomes, ignored = codec.decode_rows(json.dumps([row, older]).encode(), float)
    assert ignored == 0
    assert [o.result.first_chunk_s for o in outcomes] == [0.4, None]
    assert outcomes[0].result.latency_s == 9.0


def test_provider_flags_are_checked() -> None:
    models = [codec.model_id(KEY)]
    flag = codec.decode_flag(json.dumps(["provider_outage", "open%7Cai", "p1", models]))
    assert flag == codec.ProviderFlag(K.PROVIDER_OUTAGE, "open|ai", "p1", (KEY,))
    for bad in (
        ["breaker_opened", "openai", "p1", []],  # not a provider kind
        ["provider_outage", "open|ai", "p1", []],  # not escaped as the flusher escapes it
        ["provider_outage", "openai", "p1", ["not a model id"]],
        ["provider_outage", "openai", "p1"],
        "nonsense",
    ):
        with pytest.raises(codec.Invalid):
            codec.decode_flag(json.dumps(bad))
