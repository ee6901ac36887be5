"""Rendering the Helm chart and the checks every rendered object must pass.

The checks return the problems they find instead of asserting, so that a test can break a
rendered manifest on purpose and see the check fail: they cannot pass vacuously.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.conftest import REPO

HELM = REPO / ".bin" / "helm"
CHART = REPO / "helm" / "ragplane"
# Every values file under ci/ is rendered and validated besides the defaults.
VALUES_FILES = {"default": None} | {
    path.name.removesuffix("-values.yaml"): path for path in sorted(CHART.glob("ci/*-values.yaml"))
}
RELEASE = "rp"
NAMESPACE = "ragplane"
# The Kubernetes version helm renders for; the chart needs 1.27 or later (gRPC probes).
KUBE_VERSION = "1.33.0"
SERVICES = ("query", "embedding", "retrieval", "generation")

Manifest = dict[str, Any]


class RenderError(Exception):
    """helm template failed; the message is helm's."""


def helm_template(values_file: Path | None = None, *extra: str) -> str:
    """The chart rendered by `helm template` with a values file and extra helm arguments."""
    args = [str(HELM), "template", RELEASE, str(CHART), "--namespace", NAMESPACE]
    args += ["--kube-version", KUBE_VERSION]
    if values_file is not None:
        args += ["--values", str(values_file)]
    done = subprocess.run([*args, *extra], capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RenderError(done.stderr)
    return done.stdout


def render(values_file: Path | None = None, *extra: str) -> list[Manifest]:
    return [doc for doc in yaml.safe_load_all(helm_template(values_file, *extra)) if doc]


def of_kind(objects: Iterable[Manifest], kind: str) -> list[Manifest]:
    return [obj for obj in objects if obj["kind"] == kind]


def named(objects: Iterable[Manifest], kind: str, name: str) -> Manifest:
    found = [obj for obj in of_kind(objects, kind) if obj["metadata"]["name"] == name]
    assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
    return found[0]


def component(service: str) -> str:
    """Name of a service's objects in the test release."""
    return f"{RELEASE}-ragplane-{service}"


def containers(deployment: Manifest) -> list[Manifest]:
    spec = deployment["spec"]["template"]["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


# -- the checks ----------------------------------------------------------------------------

_PROBES = ("startupProbe", "readinessProbe", "livenessProbe")


def _container_problems(where: str, container: Manifest) -> list[str]:
    problems = []
    for probe in _PROBES:
        if "grpc" not in container.get(probe, {}):
            problems.append(f"{where}: no gRPC {probe}")
    resources = container.get("resources", {})
    for bound in ("requests", "limits"):
        for resource in ("cpu", "memory"):
            if resource not in resources.get(bound, {}):
                problems.append(f"{where}: no {resource} in resources.{bound}")
    security = container.get("securityContext", {})
    expected = {
        "runAsNonRoot": True,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
    }
    for key, value in expected.items():
        if security.get(key) is not value:
            problems.append(f"{where}: securityContext.{key} is not {value}")
    if "ALL" not in security.get("capabilities", {}).get("drop", []):
        problems.append(f"{where}: capabilities are not all dropped")
    if security.get("seccompProfile", {}).get("type") != "RuntimeDefault":
        problems.append(f"{where}: seccompProfile is not RuntimeDefault")
    return problems


def _selects(selector: Manifest, labels: dict[str, str]) -> bool:
    wanted = selector.get("matchLabels", {})
    return bool(wanted) and all(labels.get(key) == value for key, value in wanted.items())


def _pod_problems(name: str, deployment: Manifest) -> list[str]:
    pod = deployment["spec"]["template"]["spec"]
    problems = []
    if pod.get("securityContext", {}).get("runAsNonRoot") is not True:
        problems.append(f"{name}: pod securityContext.runAsNonRoot is not true")
    if pod.get("automountServiceAccountToken") is not False:
        problems.append(f"{name}: the service account token is mounted")
    if not pod.get("topologySpreadConstraints"):
        problems.append(f"{name}: no topologySpreadConstraints")
    return problems


def policy_problems(
    objects: Sequence[Manifest], autoscaling: bool = True, disruption_budgets: bool = True
) -> list[str]:
    """What a reviewer would flag in a rendered chart; empty when nothing."""
    problems = []
    budgets = of_kind(objects, "PodDisruptionBudget")
    autoscalers = of_kind(objects, "HorizontalPodAutoscaler")
    for deployment in of_kind(objects, "Deployment"):
        name = deployment["metadata"]["name"]
        labels = deployment["spec"]["template"]["metadata"]["labels"]
        problems += _pod_problems(name, deployment)
        for container in containers(deployment):
            problems += _container_problems(f"{name}/{container['name']}", container)
        if disruption_budgets and not any(_selects(b["spec"]["selector"], labels) for b in budgets):
            problems.append(f"{name}: no PodDisruptionBudget selects its pods")
        if autoscaling and not any(
            a["spec"]["scaleTargetRef"]
            == {"apiVersion": "apps/v1", "kind": "Deployment", "name": name}
            for a in autoscalers
        ):
            problems.append(f"{name}: no HorizontalPodAutoscaler scales it")
    for service in of_kind(objects, "Service"):
        if service["spec"].get("type") == "LoadBalancer":
            problems.append(f"{service['metadata']['name']}: Service of type LoadBalancer")
    return problems


# -- metric names in the alert rules and the dashboard -------------------------------------

_METRIC = re.compile(r"\bragplane_[a-z0-9_]+\b")


def _dashboard_expressions(objects: Sequence[Manifest]) -> list[str]:
    expressions = []
    for config_map in of_kind(objects, "ConfigMap"):
        for key, text in config_map.get("data", {}).items():
            if key.endswith(".json"):
                dashboard = json.loads(text)
                for panel in dashboard["panels"]:
                    expressions += [target["expr"] for target in panel.get("targets", [])]
    return expressions


def _rule_expressions(objects: Sequence[Manifest]) -> list[str]:
    return [
        rule["expr"]
        for rule_set in of_kind(objects, "PrometheusRule")
        for group in rule_set["spec"]["groups"]
        for rule in group["rules"]
    ]


def monitored_metric_names(objects: Sequence[Manifest]) -> set[str]:
    """Every metric name that an alert rule or a dashboard panel queries."""
    expressions = _rule_expressions(objects) + _dashboard_expressions(objects)
    return {name for expression in expressions for name in _METRIC.findall(expression)}


# -- runbooks ------------------------------------------------------------------------------

RUNBOOKS = REPO / "docs" / "runbooks"


def runbooks() -> dict[str, str]:
    """Runbook text by the alert it is for (the file's name, without .md)."""
    return {
        path.stem: path.read_text() for path in RUNBOOKS.glob("*.md") if path.name != "README.md"
    }


def alert_rules(objects: Sequence[Manifest]) -> list[dict[str, Any]]:
    return [
        rule
        for rule_set in of_kind(objects, "PrometheusRule")
        for group in rule_set["spec"]["groups"]
        for rule in group["rules"]
        if "alert" in rule
    ]


def runbook_metric_names() -> set[str]:
    """Every metric name a runbook tells a person to query."""
    return {name for text in runbooks().values() for name in _METRIC.findall(text)}
