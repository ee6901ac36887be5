"""The chart's alert rules, checked and unit-tested by promtool: each alert fires at its
threshold on synthetic series, and stays silent below it."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import REPO
from tests.helm.chart import VALUES_FILES, Manifest, of_kind, render

PROMTOOL = REPO / ".bin" / "promtool"
NS = 'namespace="ragplane"'
QUERY_METHOD = "/ragplane.v1.QueryService/Query"
SEARCH_METHOD = "/ragplane.v1.RetrievalService/Search"
QUERY = f'method="{QUERY_METHOD}"'
SEARCH = f'method="{SEARCH_METHOD}"'


@pytest.fixture(scope="module")
def groups() -> list[dict[str, Any]]:
    rule_sets: list[Manifest] = of_kind(render(VALUES_FILES["production"]), "PrometheusRule")
    assert len(rule_sets) == 1
    return list(rule_sets[0]["spec"]["groups"])


def _promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(PROMTOOL), *map(str, args)], capture_output=True, text=True, timeout=120
    )


def test_promtool_accepts_the_rules(groups: list[dict[str, Any]], tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": groups}))
    done = _promtool("check", "rules", rules)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "SUCCESS: 12 rules found" in done.stdout


def _buckets(name: str, labels: str, per_minute_by_le: dict[str, int]) -> list[dict[str, str]]:
    return [
        {"series": f'{name}_bucket{{{NS}, {labels}, le="{le}"}}', "values": f"0+{rate}x40"}
        for le, rate in per_minute_by_le.items()
    ]


def _histogram(labels: str, per_minute_by_le: dict[str, int]) -> list[dict[str, str]]:
    return _buckets("ragplane_rpc_duration_seconds", labels, per_minute_by_le)


def _counter(name: str, labels: str, per_minute: float | str, minutes: int = 40) -> dict[str, str]:
    """A counter rising by ``per_minute``; a string is promtool's own expansion after "0+"."""
    increments = per_minute if isinstance(per_minute, str) else f"{per_minute}x{minutes}"
    return {"series": f"{name}{{{NS}, {labels}}}", "values": f"0+{increments}"}


def _alerts(name: str, eval_time: str, *expected: dict[str, str]) -> dict[str, Any]:
    return {
        "eval_time": eval_time,
        "alertname": name,
        "exp_alerts": [{"exp_labels": labels} for labels in expected],
    }


REQUESTS = "ragplane_rpc_requests_total"
LOOKUPS = "ragplane_query_cache_lookups_total"
FAITHFULNESS = "ragplane_query_faithfulness"
ROUTES = "ragplane_query_confidence_routes_total"
FEEDBACK = "ragplane_query_feedback_total"
# Latency: the query service's calls all take 2-5 s (p95 4.85 s), retrieval's 5-10 s (9.75 s).
# Errors: query fails 3 calls in 103 (2.9%; its 50 INVALID_ARGUMENT are the callers' fault),
# retrieval 10 in 100. Cache: 2 hits in 10 queries. Breakers (a provider's, the query service's
# embedding dependency's): open for 5 minutes.
# Cost: 3 USD an hour for a day, then 12 USD in one hour.
UNIT_TESTS: list[dict[str, Any]] = [
    {
        "interval": "1m",
        "input_series": [
            *_histogram(f'service="query", {QUERY}', {"1": 0, "2": 0, "5": 10, "+Inf": 10}),
            *_histogram(f'service="retrieval", {SEARCH}', {"5": 0, "10": 10, "+Inf": 10}),
            _counter(REQUESTS, f'service="query", {QUERY}, code="OK"', 100),
            _counter(REQUESTS, f'service="query", {QUERY}, code="UNAVAILABLE"', 3),
            _counter(REQUESTS, f'service="query", {QUERY}, code="INVALID_ARGUMENT"', 50),
            _counter(REQUESTS, f'service="retrieval", {SEARCH}, code="OK"', 90),
            _counter(REQUESTS, f'service="retrieval", {SEARCH}, code="DEADLINE_EXCEEDED"', 10),
            _counter(LOOKUPS, 'layer="exact", outcome="hit"', 1, 80),
            _counter(LOOKUPS, 'layer="exact", outcome="miss"', 9, 80),
            _counter(LOOKUPS, 'layer="semantic", outcome="hit"', 1, 80),
            _counter(LOOKUPS, 'layer="semantic", outcome="miss"', 8, 80),
            {
                "series": f'ragplane_generation_breaker_state{{{NS}, provider="openai"}}',
                "values": "0x10 2x10",
            },
            {
                "series": "ragplane_query_dependency_breaker_state"
                f'{{{NS}, dependency="embedding"}}',
                "values": "0x10 2x10",
            },
            {
                "series": f'ragplane_generation_cost_usd_total{{{NS}, provider="openai"}}',
                "values": "0+0.05x1440 72+0.2x60",
            },
        ],
        "alert_rule_test": [
            _alerts(
                "RagplaneLatencyP95High",
                "20m",
                {"severity": "warning", "service": "query", "method": QUERY_METHOD},
                {"severity": "warning", "service": "retrieval", "method": SEARCH_METHOD},
                {"severity": "critical", "service": "retrieval", "method": SEARCH_METHOD},
            ),
            _alerts(
                "RagplaneErrorRateHigh",
                "20m",
                {"severity": "warning", "service": "query"},
                {"severity": "warning", "service": "retrieval"},
                {"severity": "critical", "service": "retrieval"},
            ),
            _alerts("RagplaneAnswerCacheHitRateLow", "70m", {"severity": "warning"}),
            _alerts("RagplaneCircuitBreakerOpen", "5m"),
            _alerts(
                "RagplaneCircuitBreakerOpen",
                "15m",
                {"severity": "warning", "provider": "openai"},
            ),
            _alerts("RagplaneDependencyBreakerOpen", "5m"),
            _alerts(
                "RagplaneDependencyBreakerOpen",
                "15m",
                {"severity": "warning", "dependency": "embedding"},
            ),
            _alerts("RagplaneLLMCostSpike", "1439m"),
            _alerts("RagplaneLLMCostSpike", "1500m", {"severity": "warning"}),
        ],
    },
    # Faithfulness, per tier: small answers all within 0.4-0.5 (p50 0.45), none half at most
    # 0.85 and half 0.85-0.9 (p50 exactly 0.85, the threshold: not below it), large 0.85-0.9.
    {
        "interval": "1m",
        "input_series": [
            *_buckets(FAITHFULNESS, 'tier="small"', {"0.4": 0, "0.5": 10, "1": 10, "+Inf": 10}),
            *_buckets(FAITHFULNESS, 'tier="none"', {"0.8": 0, "0.85": 5, "0.9": 10, "+Inf": 10}),
            *_buckets(FAITHFULNESS, 'tier="large"', {"0.85": 0, "0.9": 10, "+Inf": 10}),
        ],
        "alert_rule_test": [
            _alerts("RagplaneFaithfulnessLow", "10m"),
            _alerts("RagplaneFaithfulnessLow", "25m", {"severity": "warning", "tier": "small"}),
        ],
    },
    # A day with 10% of the routed questions not found, then an hour with 21% (2.1x): fires;
    # feedback 79% thumbs-up: fires.
    {
        "interval": "1m",
        "input_series": [
            _counter(ROUTES, 'route="not_found"', "10x1440 14400+21x60"),
            _counter(ROUTES, 'route="answered"', "90x1440 129600+79x60"),
            _counter(FEEDBACK, 'rating="up", tier="small"', "79x40"),
            _counter(FEEDBACK, 'rating="down", tier="small"', "21x40"),
        ],
        "alert_rule_test": [
            _alerts("RagplaneNotFoundRateRising", "1500m", {"severity": "warning"}),
            _alerts("RagplaneFeedbackRatioLow", "30m", {"severity": "warning"}),
        ],
    },
    # Just short of both thresholds: 19% not found after a day of 10% (1.9x), 81% thumbs-up.
    {
        "interval": "1m",
        "input_series": [
            _counter(ROUTES, 'route="not_found"', "10x1440 14400+19x60"),
            _counter(ROUTES, 'route="answered"', "90x1440 129600+81x60"),
            _counter(FEEDBACK, 'rating="up", tier="small"', "81x40"),
            _counter(FEEDBACK, 'rating="down", tier="small"', "19x40"),
        ],
        "alert_rule_test": [
            _alerts("RagplaneNotFoundRateRising", "1500m"),
            _alerts("RagplaneFeedbackRatioLow", "30m"),
        ],
    },
]


def test_each_alert_fires_at_its_threshold_and_not_below(
    groups: list[dict[str, Any]], tmp_path: Path
) -> None:
    # Annotations are text for people; the unit tests are about when an alert fires.
    for group in groups:
        for rule in group["rules"]:
            rule.pop("annotations", None)
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump({"groups": groups}))
    tests = tmp_path / "tests.yaml"
    tests.write_text(
        yaml.safe_dump(
            {"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": UNIT_TESTS}
        )
    )
    done = _promtool("test", "rules", tests)
    assert done.returncode == 0, done.stdout + done.stderr
