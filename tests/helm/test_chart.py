"""The chart as `make helm-lint` checks it: helm lint, the Kubernetes schemas of two versions,
the policy every object must meet, the values schema, and what the services will read."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from pydantic_settings import BaseSettings

from ragplane.embedding.config import EmbeddingSettings
from ragplane.generation.config import GenerationSettings
from ragplane.query.config import BatchSettings, FlagSettings, GuardSettings, QuerySettings
from ragplane.query.flags.source import parse_flags
from ragplane.retrieval.config import RetrievalSettings
from ragplane.runtime.settings import ServiceSettings, load_settings
from tests.helm.chart import (
    CHART,
    HELM,
    KUBE_VERSION,
    SERVICES,
    VALUES_FILES,
    Manifest,
    RenderError,
    component,
    containers,
    helm_template,
    monitored_metric_names,
    named,
    of_kind,
    policy_problems,
    render,
)

# The oldest Kubernetes the chart supports and the newest kubernetes-validate ships.
VALIDATED_VERSIONS = ("1.27.0", "1.37.0")
# Custom resources of the Prometheus operator: no Kubernetes schema has them.
CUSTOM_KINDS = {"ServiceMonitor", "PrometheusRule"}
# The settings each service reads; the query service's caches and limits have a class of their
# own (same QUERY_ prefix).
SETTINGS: dict[str, type[ServiceSettings]] = {
    "query": QuerySettings,
    "embedding": EmbeddingSettings,
    "retrieval": RetrievalSettings,
    "generation": GenerationSettings,
}
EXTRA_SETTINGS: dict[str, list[type[BaseSettings]]] = {
    "query": [GuardSettings, BatchSettings, FlagSettings]
}
PRODUCTION = VALUES_FILES["production"]


@pytest.fixture(scope="module", params=sorted(VALUES_FILES))
def values_name(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(scope="module")
def rendered(values_name: str) -> list[Manifest]:
    return render(VALUES_FILES[values_name])


@pytest.fixture(scope="module")
def production() -> list[Manifest]:
    return render(PRODUCTION)


def _kubernetes_validate(manifest_file: Path) -> subprocess.CompletedProcess[str]:
    """kubernetes-validate in strict mode (unknown fields fail) against each version."""
    versions = [arg for version in VALIDATED_VERSIONS for arg in ("-k", version)]
    command = [sys.executable, "-m", "kubernetes_validate", "--strict", "--quiet", *versions]
    return subprocess.run(
        [*command, str(manifest_file)], capture_output=True, text=True, timeout=300
    )


# -- lint and Kubernetes schemas -------------------------------------------------------------


def test_helm_lint_strict_passes(values_name: str) -> None:
    args = [str(HELM), "lint", "--strict", str(CHART), "--kube-version", KUBE_VERSION]
    values_file = VALUES_FILES[values_name]
    if values_file is not None:
        args += ["--values", str(values_file)]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout + done.stderr


def test_every_object_validates_against_the_kubernetes_schemas(
    values_name: str, tmp_path: Path
) -> None:
    manifest_file = tmp_path / f"{values_name}.yaml"
    manifest_file.write_text(helm_template(VALUES_FILES[values_name]))
    done = _kubernetes_validate(manifest_file)
    assert done.returncode == 0, done.stdout + done.stderr
    # Only the Prometheus operator's kinds may go unvalidated (the tests below check them).
    skipped = [line for line in done.stdout.splitlines() if line.startswith("WARN")]
    assert all(any(kind in line for kind in CUSTOM_KINDS) for line in skipped), skipped


def test_strict_validation_rejects_a_field_kubernetes_does_not_know(tmp_path: Path) -> None:
    deployment = named(render(), "Deployment", component("query"))
    deployment["spec"]["template"]["spec"]["containers"][0]["livenessProb"] = {"grpc": {}}
    manifest_file = tmp_path / "broken.yaml"
    manifest_file.write_text(yaml.safe_dump(deployment))
    done = _kubernetes_validate(manifest_file)
    assert done.returncode != 0
    assert "livenessProb" in done.stdout


# -- the policy --------------------------------------------------------------------------------


def test_rendered_chart_passes_the_policy(rendered: list[Manifest]) -> None:
    assert len(of_kind(rendered, "Deployment")) == len(SERVICES)
    assert policy_problems(rendered) == []


def test_a_container_without_a_probe_fails_the_policy() -> None:
    objects = render()
    del containers(named(objects, "Deployment", component("embedding")))[0]["livenessProbe"]
    assert policy_problems(objects) == [
        f"{component('embedding')}/embedding: no gRPC livenessProbe"
    ]


def test_a_deployment_without_its_disruption_budget_fails_the_policy() -> None:
    objects = [
        obj
        for obj in render()
        if not (obj["kind"] == "PodDisruptionBudget" and "retrieval" in obj["metadata"]["name"])
    ]
    assert policy_problems(objects) == [
        f"{component('retrieval')}: no PodDisruptionBudget selects its pods"
    ]


def test_every_deployment_has_its_autoscaler_and_budget_and_none_when_switched_off() -> None:
    objects = render(
        None,
        "--set",
        "query.autoscaling.enabled=false",
        "--set",
        "query.podDisruptionBudget.enabled=false",
    )
    assert named(objects, "Deployment", component("query"))["spec"]["replicas"] == 2
    scaled = {
        a["spec"]["scaleTargetRef"]["name"] for a in of_kind(objects, "HorizontalPodAutoscaler")
    }
    budgets = {b["metadata"]["name"] for b in of_kind(objects, "PodDisruptionBudget")}
    others = {component(s) for s in SERVICES if s != "query"}
    assert scaled == budgets == others


def test_no_service_is_exposed_outside_the_cluster_by_default() -> None:
    assert {s["spec"]["type"] for s in of_kind(render(), "Service")} == {"ClusterIP"}


def test_the_services_the_query_service_balances_over_are_headless(
    rendered: list[Manifest],
) -> None:
    cluster_ips = {
        s["metadata"]["name"]: s["spec"].get("clusterIP") for s in of_kind(rendered, "Service")
    }
    # "None": headless, one DNS record per ready pod; the query service keeps its virtual IP.
    assert cluster_ips == {component(s): None if s == "query" else "None" for s in SERVICES}


def test_an_internal_service_that_is_not_headless_is_refused() -> None:
    with pytest.raises(RenderError, match=r"embedding\.service\.type must be ClusterIP"):
        render(None, "--set", "embedding.service.type=NodePort")


# -- the values schema -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("override", "named_in_error"),
    [
        (["--set", "query.replica=3"], "replica"),
        (["--set", "embedding.gpu.enabeld=true"], "enabeld"),
        (["--set-string", "query.port=fifty"], "port"),
        (["--set", "query.config.QUERY_DEFAULT_TIMOUT_S=5"], "QUERY_DEFAULT_TIMOUT_S"),
        (["--set", "embedding.config.EMBEDDING_BACKEND=tensorrt"], "EMBEDDING_BACKEND"),
        (["--set", "generation.providers[0].api_key=sk-in-values"], "api_key"),
        (["--set", "channels.retry.maxAttempts=6"], "maxAttempts"),
    ],
)
def test_the_schema_rejects_typos_and_wrong_types(override: list[str], named_in_error: str) -> None:
    with pytest.raises(RenderError) as error:
        render(None, *override)
    assert "values don't meet the specifications of the schema" in str(error.value)
    assert named_in_error in str(error.value)


def test_a_provider_key_without_a_secret_to_read_it_from_is_refused(tmp_path: Path) -> None:
    provider = {"name": "openai", "base_url": "https://api.openai.com/v1", "model": "gpt-4o-mini"}
    values_file = tmp_path / "values.yaml"
    values_file.write_text(
        yaml.safe_dump(
            {"generation": {"providers": [provider | {"api_key_env": "OPENAI_API_KEY"}]}}
        )
    )
    with pytest.raises(RenderError, match=r"generation\.existingSecret must name the Secret"):
        render(values_file)


# -- what the services read --------------------------------------------------------------------


def _environment(objects: list[Manifest], service: str) -> dict[str, str]:
    """The environment a service's container starts with (Secrets' values left as references)."""
    config_map = named(objects, "ConfigMap", component(service))
    environment = dict(config_map["data"])
    container = containers(named(objects, "Deployment", component(service)))[0]
    for variable in container.get("env", []):
        environment[variable["name"]] = variable.get("value", "<from a Secret>")
    return environment


@pytest.mark.parametrize("service", SERVICES)
def test_every_setting_the_chart_sets_is_read_and_valid(
    rendered: list[Manifest], service: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings_class = SETTINGS[service]
    extra_classes = EXTRA_SETTINGS.get(service, [])
    # Each class reads its fields under its own prefix (QUERY_, QUERY_BATCH_).
    known = {
        f"{c.model_config.get('env_prefix', '')}{name}".upper()
        for c in (settings_class, *extra_classes)
        for name in c.model_fields
    }
    prefix = f"{service.upper()}_"
    environment = _environment(rendered, service)
    unknown = [name for name in environment if name.startswith(prefix) and name not in known]
    assert unknown == [], f"the chart sets variables the {service} service does not read"
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    # As at start-up: exits naming each variable whose value does not validate.
    for extra_class in extra_classes:
        load_settings(extra_class)
    settings = load_settings(settings_class)
    assert settings.host == "0.0.0.0"
    assert settings.metrics_port > 0


def _rendered_with_flags(tmp_path: Path, version: str) -> list[Manifest]:
    flags = {"version": version, "tenants": {"acme": {"tier": "large", "shadow": {"share": 0.1}}}}
    values = tmp_path / f"flags-{version}.yaml"
    values.write_text(yaml.safe_dump({"query": {"flags": flags}}))
    return render(values)


def _config_checksum(objects: list[Manifest]) -> str:
    template = named(objects, "Deployment", component("query"))["spec"]["template"]
    return str(template["metadata"]["annotations"]["checksum/config"])


def test_the_flags_are_a_mounted_config_map_whose_change_does_not_roll_the_pods(
    tmp_path: Path,
) -> None:
    first, second = _rendered_with_flags(tmp_path, "1"), _rendered_with_flags(tmp_path, "2")
    flags_map = f"{component('query')}-flags"
    flags = parse_flags(named(first, "ConfigMap", flags_map)["data"]["flags.yaml"])
    assert flags.tenants["acme"].tier == "large"
    container = containers(named(first, "Deployment", component("query")))[0]
    [mount] = [m for m in container["volumeMounts"] if m["name"] == "flags"]
    assert _environment(first, "query")["QUERY_FLAGS_FILE"] == f"{mount['mountPath']}/flags.yaml"
    assert parse_flags(named(second, "ConfigMap", flags_map)["data"]["flags.yaml"]).version == "2"
    # Re-read by the running pods: a new version must not restart them.
    assert _config_checksum(first) == _config_checksum(second)


def test_the_query_service_is_pointed_at_the_other_three(rendered: list[Manifest]) -> None:
    environment = _environment(rendered, "query")
    for service, port in (("embedding", 50052), ("retrieval", 50053), ("generation", 50054)):
        target = f"dns:///{component(service)}:{port}"
        assert environment[f"QUERY_{service.upper()}_TARGET"] == target


def test_provider_keys_and_the_redis_password_come_from_existing_secrets(
    production: list[Manifest],
) -> None:
    assert of_kind(production, "Secret") == []
    generation = containers(named(production, "Deployment", component("generation")))[0]
    assert {
        "name": "OPENAI_API_KEY",
        "valueFrom": {"secretKeyRef": {"name": "ragplane-llm-keys", "key": "OPENAI_API_KEY"}},
    } in generation["env"]
    embedding_env = containers(named(production, "Deployment", component("embedding")))[0]["env"]
    names = [variable["name"] for variable in embedding_env]
    # $(REDIS_PASSWORD) is expanded only when that variable is defined before the URL.
    assert names.index("REDIS_PASSWORD") < names.index("EMBEDDING_REDIS_URL")
    url = embedding_env[names.index("EMBEDDING_REDIS_URL")]["value"]
    assert url == "redis://:$(REDIS_PASSWORD)@redis-master.redis.svc.cluster.local:6379/0"


def test_the_gpu_embedding_requests_a_gpu_runs_cuda_and_lands_on_gpu_nodes(
    production: list[Manifest],
) -> None:
    deployment = named(production, "Deployment", component("embedding"))
    pod = deployment["spec"]["template"]["spec"]
    container = containers(deployment)[0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert container["image"].endswith("/ragplane/embedding:0.1.0-cuda")
    assert _environment(production, "embedding")["EMBEDDING_DEVICE"] == "cuda"
    assert pod["nodeSelector"] == {"nvidia.com/gpu.present": "true"}
    assert pod["tolerations"][0]["key"] == "nvidia.com/gpu"
    cpu_only = containers(named(render(), "Deployment", component("embedding")))[0]
    assert "nvidia.com/gpu" not in cpu_only["resources"]["limits"]
    assert _environment(render(), "embedding")["EMBEDDING_DEVICE"] == "cpu"


def test_the_embedding_model_gets_a_startup_probe_longer_than_the_others() -> None:
    objects = render()

    def startup_budget_s(service: str) -> int:
        probe = containers(named(objects, "Deployment", component(service)))[0]["startupProbe"]
        return int(probe["periodSeconds"] * probe["failureThreshold"])

    assert startup_budget_s("embedding") >= 300
    assert all(
        startup_budget_s("embedding") > startup_budget_s(s) for s in SERVICES[:1] + SERVICES[2:]
    )


# -- network policies --------------------------------------------------------------------------


def _policy(objects: list[Manifest], service: str) -> Manifest:
    spec: Manifest = named(objects, "NetworkPolicy", component(service))["spec"]
    return spec


def _peer_components(rules: list[Manifest]) -> set[str]:
    """The services of this release that egress (to) or ingress (from) rules name."""
    peers = [peer for rule in rules for peer in [*rule.get("to", []), *rule.get("from", [])]]
    return {
        peer["podSelector"]["matchLabels"]["app.kubernetes.io/component"]
        for peer in peers
        if "app.kubernetes.io/component" in peer.get("podSelector", {}).get("matchLabels", {})
    }


def test_only_the_query_service_reaches_the_other_three(rendered: list[Manifest]) -> None:
    for service in ("embedding", "retrieval", "generation"):
        grpc_rule = _policy(rendered, service)["ingress"][0]
        assert _peer_components([grpc_rule]) == {"query"}
        assert len(grpc_rule["from"]) == 1
        assert _peer_components(_policy(rendered, service)["egress"]) == set()
    assert _peer_components(_policy(rendered, "query")["egress"]) == {
        "embedding",
        "retrieval",
        "generation",
    }


def _reaches(objects: list[Manifest], service: str, port: int) -> bool:
    return any(
        rule_port["port"] == port
        for rule in _policy(objects, service)["egress"]
        for rule_port in rule.get("ports", [])
        if rule.get("to")
    )


def test_only_the_services_that_need_them_reach_weaviate_redis_and_the_llms(
    rendered: list[Manifest],
) -> None:
    weaviate_grpc, redis, https = 50051, 6379, 443
    # query: the semantic answer cache (Weaviate) and the exact cache, limits and budgets (Redis);
    # embedding: its cache; generation: breaker state shared by its replicas; retrieval: a
    # deleted or deactivated tenant's cached answers are invalidated there.
    assert [s for s in SERVICES if _reaches(rendered, s, weaviate_grpc)] == ["query", "retrieval"]
    assert [s for s in SERVICES if _reaches(rendered, s, redis)] == [
        "query",
        "embedding",
        "retrieval",
        "generation",
    ]
    assert [s for s in SERVICES if _reaches(rendered, s, https)] == ["generation"]


# -- monitoring --------------------------------------------------------------------------------


def test_monitoring_is_off_by_default_and_on_in_production(production: list[Manifest]) -> None:
    assert not {o["kind"] for o in render()} & CUSTOM_KINDS
    assert {o["kind"] for o in production} >= CUSTOM_KINDS
    monitor = of_kind(production, "ServiceMonitor")[0]["spec"]
    assert monitor["endpoints"][0]["port"] == "metrics"
    # The metrics' own `service` label must survive the scrape for the alerts to group by it.
    assert monitor["endpoints"][0]["honorLabels"] is True


def test_the_alerts_carry_the_thresholds_of_the_values(production: list[Manifest]) -> None:
    rules = [
        rule
        for group in of_kind(production, "PrometheusRule")[0]["spec"]["groups"]
        for rule in group["rules"]
    ]
    by_name: dict[tuple[str, str], str] = {
        (rule["alert"], rule["labels"]["severity"]): " ".join(rule["expr"].split())
        for rule in rules
    }
    assert by_name[("RagplaneLatencyP95High", "warning")].endswith("> 2")
    assert by_name[("RagplaneLatencyP95High", "critical")].endswith("> 5")
    assert by_name[("RagplaneErrorRateHigh", "warning")].endswith("> 0.01")
    assert by_name[("RagplaneErrorRateHigh", "critical")].endswith("> 0.05")
    assert by_name[("RagplaneAnswerCacheHitRateLow", "warning")].endswith("< 0.3")
    assert by_name[("RagplaneAnswerCacheHitRateLow", "critical")].endswith("< 0.1")
    assert "> 2 * sum(increase(" in by_name[("RagplaneLLMCostSpike", "warning")]
    assert by_name[("RagplaneCircuitBreakerOpen", "warning")].endswith("== 2")
    assert by_name[("RagplaneDependencyBreakerOpen", "warning")].endswith("== 2")
    assert all('namespace="ragplane"' in expr for expr in by_name.values())


def test_the_dashboard_is_grafana_json_with_a_query_in_every_panel(
    production: list[Manifest],
) -> None:
    config_map = named(production, "ConfigMap", "rp-ragplane-dashboard")
    assert config_map["metadata"]["labels"]["grafana_dashboard"] == "1"
    dashboard = json.loads(config_map["data"]["ragplane.json"])
    panels = [p for p in dashboard["panels"] if p["type"] != "row"]
    assert len(panels) >= 15
    assert all(panel["targets"] and panel["title"] for panel in panels)
    names = monitored_metric_names(production)
    # The panels an operator opens first: traffic, latency, cost, embedding throughput.
    assert {
        "ragplane_rpc_requests_total",
        "ragplane_rpc_duration_seconds_bucket",
        "ragplane_generation_cost_usd_total",
        "ragplane_embedding_texts_embedded_total",
        "ragplane_query_cache_lookups_total",
    } <= names


def test_values_schema_accepts_exactly_the_settings_each_service_reads() -> None:
    script = Path(__file__).resolve().parents[2] / "scripts" / "gen-values-schema.py"
    check = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stderr
