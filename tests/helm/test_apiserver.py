"""The chart on a real Kubernetes API server (kube-apiserver and etcd, tests/helm/apiserver.py):
helm install, upgrade with changed values, rollback and uninstall; every Deployment's pod
template admitted by a server-side dry-run create in a namespace enforcing Pod Security
`restricted`, and a root user refused there."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from typing import Any

import pytest

from tests.helm.apiserver import ApiServer, missing_binary
from tests.helm.chart import CHART, HELM, NAMESPACE, RELEASE, SERVICES, component, of_kind, render

pytestmark = pytest.mark.skipif(missing_binary() is not None, reason=str(missing_binary()))

RESTRICTED = {
    "pod-security.kubernetes.io/enforce": "restricted",
    "pod-security.kubernetes.io/enforce-version": "latest",
}
ROOT_USER = ["--set", "podSecurityContext.runAsUser=0"]
ROOT_USER += ["--set", "podSecurityContext.runAsNonRoot=false"]


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    server = ApiServer.start(tmp_path_factory.mktemp("apiserver"))
    try:
        namespace = {"metadata": {"name": NAMESPACE, "labels": RESTRICTED}}
        status, answer = server.request("POST", "/api/v1/namespaces", namespace)
        assert status == 201, answer
        yield server
    finally:
        server.stop()


def _helm(api: ApiServer, *args: str) -> str:
    done = subprocess.run(
        [str(HELM), "--kubeconfig", str(api.kubeconfig), "--namespace", NAMESPACE, *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, f"helm {' '.join(args)}:\n{done.stderr}"
    return done.stdout


def _deployments(api: ApiServer) -> list[dict[str, Any]]:
    status, answer = api.request("GET", f"/apis/apps/v1/namespaces/{NAMESPACE}/deployments")
    assert status == 200, answer
    items: list[dict[str, Any]] = answer["items"]
    return items


def _setting(api: ApiServer, service: str, name: str) -> str:
    path = f"/api/v1/namespaces/{NAMESPACE}/configmaps/{component(service)}"
    status, answer = api.request("GET", path)
    assert status == 200, answer
    return str(answer["data"][name])


def _dry_run_pod(api: ApiServer, deployment: dict[str, Any]) -> tuple[int, Any]:
    """Create (dry run: admitted, not stored) the pod a Deployment would make."""
    template = deployment["spec"]["template"]
    pod = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {**template["metadata"], "name": deployment["metadata"]["name"]},
        "spec": template["spec"],
    }
    return api.request("POST", f"/api/v1/namespaces/{NAMESPACE}/pods?dryRun=All", pod)


def test_install_upgrade_rollback_and_uninstall(api: ApiServer) -> None:
    _helm(api, "install", RELEASE, str(CHART))
    names = {d["metadata"]["name"] for d in _deployments(api)}
    assert names == {component(service) for service in SERVICES}
    assert _setting(api, "query", "QUERY_LOG_LEVEL") == "INFO"

    _helm(api, "upgrade", RELEASE, str(CHART), "--set", "logLevel=DEBUG")
    assert _setting(api, "query", "QUERY_LOG_LEVEL") == "DEBUG"

    _helm(api, "rollback", RELEASE, "1")
    assert _setting(api, "query", "QUERY_LOG_LEVEL") == "INFO"
    history = _helm(api, "history", RELEASE, "--output", "json")
    assert history.count('"revision"') == 3

    # Pod Security admits every pod the release's Deployments would start, as stored.
    for deployment in _deployments(api):
        status, answer = _dry_run_pod(api, deployment)
        assert status == 201, answer.get("message")

    _helm(api, "uninstall", RELEASE)
    assert _deployments(api) == []


def test_a_root_user_is_refused_by_pod_security_restricted(api: ApiServer) -> None:
    # The release's service accounts must exist for a pod to be admitted at all.
    _helm(api, "install", RELEASE, str(CHART))
    try:
        for deployment in of_kind(render(None, *ROOT_USER), "Deployment"):
            status, answer = _dry_run_pod(api, deployment)
            assert status == 403, answer
            assert 'violates PodSecurity "restricted:latest"' in answer["message"]
            assert "runAsUser=0" in answer["message"]
    finally:
        _helm(api, "uninstall", RELEASE)
