"""The shipped Grafana dashboard and Prometheus rules: valid, and built only on metric names the library
exports (the instruments it creates, named from semconv.py, translated as they reach Prometheus)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader

from otel_model_health import semconv
from otel_model_health.dashboards import FILES, GRAFANA_DASHBOARD, PROMETHEUS_RULES, path, prometheus_names
from otel_model_health.health.metrics import register_health_metrics
from otel_model_health.health.registry import HealthRegistry
from otel_model_health.instrument.instruments import Instruments
from otel_model_health.outcomes import classify_call
from otel_model_health.sentry.bridge import SentryBridge

HERE = Path(__file__).parent
# Identifiers in PromQL that are not metric names: functions, keywords, aggregations.
_LABEL_LISTS = re.compile(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)")
_NAME = re.compile(r"\b((?:gen_ai|model_health)_[a-z0-9_]+)\b")
_RECORDED = re.compile(r"\bmodel_health:[a-z0-9_:]+\b")


def _created_instruments() -> dict[str, tuple[str, str]]:
    """Every instrument the library creates: name -> (kind, unit), spied on a real SDK meter."""
    created: dict[str, tuple[str, str]] = {}
    provider = MeterProvider(metric_readers=[InMemoryMetricReader()])

    class SpyMeter:
        def __init__(self, meter: Any) -> None:
            self._meter = meter

        def __getattr__(self, attr: str) -> Any:
            method = getattr(self._meter, attr)
            if not attr.startswith("create_"):
                return method

            def create(name: str, *args: Any, **kwargs: Any) -> Any:
                created[name] = (attr.removeprefix("create_"), kwargs.get("unit", ""))
                return method(name, *args, **kwargs)

            return create

    class SpyProvider:
        def get_meter(self, *args: Any, **kwargs: Any) -> Any:
            return SpyMeter(provider.get_meter(*args, **kwargs))

    registry = HealthRegistry()
    spy: Any = SpyProvider()
    register_health_metrics(registry, spy.get_meter("test"))
    Instruments(
        tracer_provider=_tracer_provider(), meter_provider=spy, recorder=registry, classify=classify_call
    )
    SentryBridge().register_dropped_metric(spy)
    return created


def _tracer_provider() -> Any:
    from opentelemetry.sdk.trace import TracerProvider

    return TracerProvider()


def _exported_names() -> set[str]:
    created = _created_instruments()
    declared = {value for name, value in vars(semconv).items() if name.startswith("METRIC_")}
    assert set(created) <= declared, f"instruments not named from semconv.py: {set(created) - declared}"
    return {series for name, (kind, unit) in created.items() for series in prometheus_names(name, kind, unit)}


def _rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(path(PROMETHEUS_RULES).read_text())
    return [rule for group in document["groups"] for rule in group["rules"]]


def _dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(path(GRAFANA_DASHBOARD).read_text())
    return loaded


def _panel_exprs(dashboard: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in dashboard["panels"] if p["type"] != "row" for t in p["targets"]]


def _metric_names(expr: str) -> set[str]:
    """Metric names in a PromQL expression: label lists and matchers taken out first (their label names
    also start with gen_ai_ / model_health_)."""
    bare = re.sub(r"\{[^}]*\}", "", _LABEL_LISTS.sub("", expr))
    return set(_NAME.findall(bare))


def test_the_mapping_to_prometheus_names() -> None:
    exported = _exported_names()
    assert exported == {
        "gen_ai_client_operation_duration_seconds_bucket",
        "gen_ai_client_operation_duration_seconds_sum",
        "gen_ai_client_operation_duration_seconds_count",
        "gen_ai_client_token_usage_bucket",
        "gen_ai_client_token_usage_sum",
        "gen_ai_client_token_usage_count",
        "gen_ai_client_operation_time_to_first_chunk_seconds_bucket",
        "gen_ai_client_operation_time_to_first_chunk_seconds_sum",
        "gen_ai_client_operation_time_to_first_chunk_seconds_count",
        "model_health_outcomes_total",
        "model_health_success_rate_ratio",
        "model_health_breaker_state_ratio",
        "model_health_breaker_transitions_total",
        "model_health_registry_evictions_total",
        "model_health_internal_errors_total",
        "model_health_sentry_dropped_total",
        "model_health_slow_call_rate_ratio",
        "model_health_slo_burn_rate_ratio",
        "model_health_slo_error_budget_remaining_ratio",
        "model_health_slo_alerts",
        "model_health_rejections_total",
    }


def test_every_metric_in_the_rules_and_the_dashboard_is_exported() -> None:
    exported = _exported_names()
    rules = _rules()
    recorded = {rule["record"] for rule in rules if "record" in rule}
    used: dict[str, set[str]] = {}
    for where, expr in [(r.get("alert") or r["record"], r["expr"]) for r in rules] + [
        (f"panel {i}", e) for i, e in enumerate(_panel_exprs(_dashboard()))
    ]:
        assert set(_RECORDED.findall(expr)) <= recorded, where
        for name in _metric_names(expr):
            used.setdefault(name, set()).add(where)
    unknown = {name: sorted(places) for name, places in used.items() if name not in exported}
    assert not unknown, f"not exported by the library: {unknown}"
    # The files use the library's main series (the check above is not vacuous).
    assert {"model_health_breaker_state_ratio", "model_health_outcomes_total"} <= set(used)
    assert "gen_ai_client_operation_duration_seconds_bucket" in used


def test_the_alerts_cover_the_issue() -> None:
    alerts = {rule["alert"]: rule for rule in _rules() if "alert" in rule}
    assert {
        "CriticalModelBreakerOpen",
        "ProviderOutage",
        "ManyBreakersOpening",
        "ModelErrorBudgetFastBurn",
        "ModelErrorBudgetSlowBurn",
        "ModelSloBurnPage",
    } <= set(alerts)
    for name, rule in alerts.items():
        assert rule["labels"]["severity"] in ("page", "ticket"), name
        assert rule["annotations"]["summary"], name


def test_the_dashboard_is_grafana_dashboard_json() -> None:
    dashboard = _dashboard()
    assert isinstance(dashboard["schemaVersion"], int) and dashboard["schemaVersion"] >= 36
    assert dashboard["uid"] and dashboard["title"]
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert {"x", "y", "w", "h"} <= set(grid) and grid["x"] + grid["w"] <= 24, panel["title"]
        if panel["type"] == "row":
            continue
        assert panel["type"] in {"stat", "timeseries", "state-timeline", "table", "gauge", "bargauge"}
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        for target in panel["targets"]:
            assert target["expr"].strip() and target["datasource"]["uid"] == "${datasource}"


def test_the_files_ship_in_the_package() -> None:
    for name in FILES:
        assert path(name).is_file()


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.fail("no promtool: install Debian's `prometheus` package (make test does)", pytrace=False)
    return found


@pytest.mark.integration
def test_promtool_checks_the_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(path(PROMETHEUS_RULES))],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.integration
def test_promtool_runs_the_alerts_on_series(tmp_path: Path) -> None:
    """promtool's rule unit tests (rules_test.yml): the alerts fire on the series they are meant for."""
    shutil.copyfile(path(PROMETHEUS_RULES), tmp_path / PROMETHEUS_RULES)
    shutil.copyfile(HERE / "rules_test.yml", tmp_path / "rules_test.yml")
    result = subprocess.run(
        [_promtool(), "test", "rules", "rules_test.yml"],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.integration
def test_the_dashboard_queries_parse(tmp_path: Path) -> None:
    """Each panel query, with Grafana's variables filled in, is valid PromQL (checked by promtool)."""
    exprs = [
        e.replace("$__rate_interval", "5m").replace("$provider", ".*").replace("$model", ".*")
        for e in _panel_exprs(_dashboard())
    ]
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [{"record": f"panel:q{i}", "expr": e} for i, e in enumerate(exprs)],
            }
        ]
    }
    file = tmp_path / "dashboard-queries.yml"
    file.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [_promtool(), "check", "rules", str(file)], check=False, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
