"""The alert rules and the Grafana dashboard of the Helm chart query only metrics that the
running services export: every name they use is checked against a live /metrics scrape of all
four services."""

from __future__ import annotations

import urllib.request

from ragplane.cli.stack import Stack
from tests.helm.chart import (
    SERVICES,
    VALUES_FILES,
    monitored_metric_names,
    render,
    runbook_metric_names,
)

# Sample names of a family besides its own, by TYPE (a counter's TYPE line already names it
# with _total in the text format prometheus_client serves).
SAMPLE_SUFFIXES = {
    "histogram": ("_bucket", "_count", "_sum"),
    "summary": ("_count", "_sum"),
}


def exported_names(metrics_text: str) -> set[str]:
    """Sample names a scrape can return, from the TYPE lines: a labelled metric has its TYPE
    line from the start, its samples only once a label combination has been used."""
    names = set()
    for line in metrics_text.splitlines():
        if line.startswith("# TYPE "):
            _, _, family, kind = line.split(maxsplit=3)
            names |= {family} | {family + suffix for suffix in SAMPLE_SUFFIXES.get(kind, ())}
        elif line and not line.startswith("#"):
            names.add(line.split("{")[0].split(" ")[0])
    return names


def _scrape(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as reply:
        return str(reply.read().decode())


def _exported(stack: Stack) -> set[str]:
    exported: set[str] = set()
    for service in SERVICES:
        exported |= exported_names(_scrape(getattr(stack.ports, f"{service}_metrics")))
    return exported


def test_every_metric_in_the_alerts_and_the_dashboard_is_exported(stack: Stack) -> None:
    monitored = monitored_metric_names(render(VALUES_FILES["production"]))
    assert len(monitored) >= 15, monitored
    assert sorted(monitored - _exported(stack)) == []


def test_every_metric_a_runbook_names_is_exported(stack: Stack) -> None:
    named = runbook_metric_names()
    assert len(named) >= 10, named
    assert sorted(named - _exported(stack)) == []
