"""The table, the plain and live displays, and the incident report, without a subprocess."""

from __future__ import annotations

import io

import pytest

from otel_model_health.cli.display import Display, use_live_output
from otel_model_health.cli.health_document import row_from_detail
from otel_model_health.cli.incidents import IncidentLog, summarize
from otel_model_health.cli.table import Row, overall_line, render_table, row_from_state
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.health.types import BreakerConfig
from otel_model_health.keys import ModelKey
from otel_model_health.outcomes import Outcome
from otel_model_health.testing import ManualClock

ROWS = [
    Row("gpt-4o", "openai", "direct", "healthy", 1.0, 20, "closed", 0.0123, 1.5, None),
    Row(
        "claude-haiku-4-5", "anthropic", "direct", "unhealthy", 0.25, 8, "open", None, None, "529: Overloaded"
    ),
]


def test_table_columns_are_aligned() -> None:
    lines = render_table(ROWS)
    assert lines[0].split() == [
        "MODEL",
        "PROVIDER",
        "GATEWAY",
        "STATUS",
        "SUCCESS",
        "BREAKER",
        "P50",
        "P95",
        "LAST",
        "ERROR",
    ]
    assert lines[1].split() == [
        "gpt-4o",
        "openai",
        "direct",
        "healthy",
        "100%",
        "of",
        "20",
        "closed",
        "12ms",
        "1.50s",
        "-",
    ]
    status_column = lines[0].index("STATUS")
    assert lines[2][status_column:].startswith("unhealthy")
    assert "\x1b[" not in "".join(lines)
    assert "\x1b[31;1munhealthy" in "".join(render_table(ROWS, colour=True))


def test_row_from_detail_reads_health_models_entries() -> None:
    row = row_from_detail(
        {
            "provider": "openai",
            "model": "gpt-4o",
            "gateway": "direct",
            "status": "degraded",
            "breaker_state": "half_open",
            "success_rate": 0.5,
            "calls_in_window": 4,
            "latency_p50_s": 0.1,
            "latency_p95_s": None,
            "last_error_type": "503",
        }
    )
    assert (row.status, row.breaker, row.success_rate, row.last_error) == (
        "degraded",
        "half_open",
        0.5,
        "503",
    )
    with pytest.raises(ValueError, match=r"entry.model must be a string, got None"):
        row_from_detail({"provider": "openai"})


def test_overall_line() -> None:
    summary = {
        "status": "unhealthy",
        "models": {"total": 3, "healthy": 1, "unhealthy": 2},
        "providers": {"anthropic": {"status": "unhealthy"}, "openai": {"status": "healthy"}},
    }
    assert (
        overall_line(summary)
        == "overall: unhealthy — 3 models: 1 healthy, 2 unhealthy; provider outage: anthropic"
    )


def test_plain_display_prints_lines_and_periodic_tables_without_ansi() -> None:
    out = io.StringIO()
    clock = ManualClock(0)
    display = Display(live=False, out=out, snapshot_every_s=10, clock=clock)
    display.log("event one")
    display.refresh(ROWS, "header")
    assert out.getvalue() == "event one\n"  # no table before it is due
    clock.advance(10)
    display.refresh(ROWS, "header")
    assert out.getvalue().count("MODEL") == 1
    display.refresh(ROWS, "header", force_table=True)  # would repeat the table just printed
    assert out.getvalue().count("MODEL") == 1
    assert "\x1b" not in out.getvalue()


def test_live_display_redraws_in_place() -> None:
    out = io.StringIO()
    display = Display(live=True, out=out)
    display.refresh(ROWS, "header")
    first = out.getvalue()
    assert "\x1b[" not in first.split("header", 1)[0]
    display.log("an event")
    display.refresh(ROWS, "header")
    second = out.getvalue()[len(first) :]
    # Up over the 4 lines drawn (header, column names, 2 rows), clear, then the event above the new table.
    assert second.startswith("\x1b[4F\x1b[J" + "an event\n" + "header\n")


def test_live_output_only_on_a_tty() -> None:
    assert not use_live_output(io.StringIO(), plain=False)


def test_incident_report_times_detection_and_recovery() -> None:
    clock = ManualClock(1000.0)
    registry = HealthRegistry(config=BreakerConfig(open_wait_s=3, jitter=0), clock=clock, wall_clock=clock)
    lines: list[str] = []
    log = IncidentLog(t0_wall=1000.0, emit=lines.append)
    registry.subscribe(log)
    key = ModelKey(provider="openai", model="gpt-4o")
    for _ in range(5):  # t+0..4: five failures in a row open the breaker at t+4
        registry.record(key, Outcome.FAILURE, error_type="503", status_code=503)
        clock.advance(1)
    clock.advance(3)  # t+8: OPEN wait over
    started = registry.now()
    for _ in range(3):
        registry.record(key, Outcome.SUCCESS, started_at=started, latency_s=0.1)
    report = summarize(log.incidents, lambda k: [(0.0, 6.0)] if k == key else [])
    text = "\n".join(report)
    assert "openai/gpt-4o via direct — errors: 503" in text
    assert "time to detect:  4.0 s (fault start → breaker opened)" in text
    assert "time to recover: 2.0 s (fault end → breaker closed)" in text
    assert any("BREAKER OPENED" in line and "error 503" in line for line in lines)
    assert summarize([], None) == ["No incidents: every model stayed healthy."]


def test_row_from_state_includes_the_last_error() -> None:
    registry = HealthRegistry()
    key = ModelKey(provider="anthropic", model="claude", gateway="openrouter")
    registry.record(key, Outcome.FAILURE, error_type="529", error_message="Overloaded", latency_s=0.2)
    state = registry.get(provider="anthropic", model="claude", gateway="openrouter")
    assert state is not None
    row = row_from_state(state)
    assert (row.gateway, row.last_error, row.healthy) == ("openrouter", "529: Overloaded", False)
