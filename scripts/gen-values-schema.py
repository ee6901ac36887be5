"""Write each service's `config` block of helm/ragplane/values.schema.json from its settings class.

The chart passes `<service>.config` to the service as environment variables, so the schema must
accept exactly the settings the service reads, with their types and bounds: generating it from
the pydantic models keeps the two from drifting (tests/helm checks the file is fresh).
Usage: .venv/bin/python scripts/gen-values-schema.py [--check]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings

from ragplane.embedding.config import EmbeddingSettings
from ragplane.generation.config import GenerationSettings
from ragplane.query.config import BatchSettings, FlagSettings, GuardSettings, QuerySettings
from ragplane.retrieval.config import RetrievalSettings

SCHEMA = Path(__file__).resolve().parents[1] / "helm" / "ragplane" / "values.schema.json"

# Settings the chart derives from other values (ports, addresses, secrets, drain timings,
# channels, GPU), so they are not accepted under `config`.
CHART_MANAGED: dict[str, set[str]] = {
    "common": {
        "port",
        "metrics_port",
        "host",
        "log_level",
        "drain_delay_s",
        "grace_period_s",
        "max_connection_age_s",
        "max_connection_age_grace_s",
        "channels",
    },
    "embedding": {"device", "onnx_cache_dir", "redis_url"},
    "retrieval": {
        "weaviate_host",
        "weaviate_http_port",
        "weaviate_grpc_port",
        "replication_factor",
        "consistency_level",
    },
    "generation": {
        "redis_url",
        "api_key",
        "base_url",
        "context_window",
        "model",
        "providers",
        "provider_name",
        "request_timeout_s",
    },
    "query": {
        "embedding_target",
        "retrieval_target",
        "generation_target",
        "redis_url",
        "weaviate_host",
        "weaviate_http_port",
        "weaviate_grpc_port",
        "api_keys_file",
        "api_keys",
        # query.batch.*
        "worker_enabled",
        "concurrency",
        "yield_in_flight",
        "retries",
        "result_ttl_s",
        "price_factor",
        # query.flags and query.shadow.*
        "flags_file",
        "shadow_generation_target",
        "shadow_max_in_flight",
        "shadow_timeout_s",
    },
}
SERVICES: dict[str, tuple[type[BaseSettings], ...]] = {
    "embedding": (EmbeddingSettings,),
    "retrieval": (RetrievalSettings,),
    "generation": (GenerationSettings,),
    "query": (QuerySettings, GuardSettings, BatchSettings, FlagSettings),
}
_KEPT = ("type", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "enum", "pattern")


def _property(field_schema: dict[str, Any]) -> dict[str, Any]:
    """The JSON schema of one setting as an environment variable's value in values.yaml."""
    if "anyOf" in field_schema:  # Optional[X]: X (an unset value is simply left out)
        field_schema = next(s for s in field_schema["anyOf"] if s.get("type") != "null")
    if field_schema.get("type") in ("array", "object") or "$ref" in field_schema:
        # The chart writes a list or map as JSON, which is what the service reads.
        kind = field_schema.get("type", "object")
        return {"type": [kind, "string"], "description": f"a YAML {kind}, or its JSON"}
    kept = {key: field_schema[key] for key in _KEPT if key in field_schema}
    if field_schema.get("format") == "path":
        kept = {"type": "string"}
    return kept or {"type": "string"}


def config_schema(service: str, classes: tuple[type[BaseSettings], ...]) -> dict[str, Any]:
    managed = CHART_MANAGED["common"] | CHART_MANAGED[service]
    properties: dict[str, Any] = {}
    for settings in classes:
        prefix = str(settings.model_config.get("env_prefix", ""))
        fields = settings.model_json_schema(mode="serialization")["properties"]
        properties.update(
            {
                f"{prefix}{name.upper()}": _property(field)
                for name, field in fields.items()
                if name not in managed
            }
        )
    return {
        "type": "object",
        "additionalProperties": False,
        "properties": properties,
        "description": f"{service.upper()}_* settings (README, Settings); "
        "ports, hosts and addresses are set by the chart",
    }


def render() -> str:
    schema = json.loads(SCHEMA.read_text())
    for service, settings in SERVICES.items():
        schema["properties"][service]["properties"]["config"] = config_schema(service, settings)
    return json.dumps(schema, indent=2) + "\n"


def main() -> int:
    rendered = render()
    if "--check" in sys.argv[1:]:
        if SCHEMA.read_text() != rendered:
            print(f"{SCHEMA} is stale: run scripts/gen-values-schema.py", file=sys.stderr)
            return 1
        return 0
    SCHEMA.write_text(rendered)
    return 0


if __name__ == "__main__":
    sys.exit(main())
