"""Every alert the chart ships has a runbook in docs/runbooks/, linked from its annotations, and
every runbook is for an alert the chart ships. (That the metrics a runbook names are exported is
checked against live services in tests/integration/test_helm_metrics.py.)"""

from __future__ import annotations

import pytest

from tests.helm.chart import VALUES_FILES, Manifest, alert_rules, render, runbooks

SECTIONS = ("**Trigger**", "**Meaning**", "**First checks**", "**Actions**")


@pytest.fixture(scope="module")
def production() -> list[Manifest]:
    return render(VALUES_FILES["production"])


def test_every_alert_has_a_runbook_that_its_annotations_link(production: list[Manifest]) -> None:
    rules = alert_rules(production)
    assert len(rules) >= 12
    written = runbooks()
    assert sorted({rule["alert"] for rule in rules} - set(written)) == []
    unlinked = [
        rule["alert"]
        for rule in rules
        if not rule["annotations"].get("runbook_url", "").endswith(f"/{rule['alert']}.md")
    ]
    assert unlinked == []


def test_every_runbook_is_for_a_shipped_alert_and_has_each_section(
    production: list[Manifest],
) -> None:
    shipped = {rule["alert"] for rule in alert_rules(production)}
    written = runbooks()
    assert sorted(set(written) - shipped) == []
    missing = {
        alert: [s for s in SECTIONS if s not in text]
        for alert, text in written.items()
        if any(s not in text for s in SECTIONS)
    }
    assert missing == {}
