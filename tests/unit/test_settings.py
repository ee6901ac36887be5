"""A bad setting stops a service at start-up with a message naming the variable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest


@pytest.mark.parametrize(
    ("service", "variable", "value"),
    [
        ("embedding", "EMBEDDING_PORT", "not-a-port"),
        ("retrieval", "RETRIEVAL_DEFAULT_ALPHA", "2"),
        ("generation", "GENERATION_REQUEST_TIMEOUT_S", "-1"),
        ("query", "QUERY_MAX_TOP_K", "zero"),
        ("query", "QUERY_BATCH_PRICE_FACTOR", "1.5"),
        ("embedding", "RAGPLANE_CHANNEL_RETRY_MAX_ATTEMPTS", "6"),
        ("retrieval", "RETRIEVAL_MAX_CONNECTION_AGE_S", "0"),
    ],
)
def test_bad_value_exits_2_naming_the_variable(service: str, variable: str, value: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"ragplane.{service}"],
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"{variable}={value!r}" in result.stderr


@pytest.mark.parametrize(
    ("service", "values"),
    [
        ("query", {"QUERY_CHUNK_TOKENS": "100", "QUERY_CHUNK_OVERLAP_TOKENS": "60"}),
        (
            "generation",
            {
                "RAGPLANE_CHANNEL_RETRY_INITIAL_BACKOFF_S": "2",
                "RAGPLANE_CHANNEL_RETRY_MAX_BACKOFF_S": "1",
            },
        ),
    ],
)
def test_cross_field_rule_names_both_variables(service: str, values: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", f"ragplane.{service}"],
        env={**os.environ, **values},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert all(variable in result.stderr for variable in values)


def test_a_bad_flags_file_stops_the_query_service_naming_the_key(tmp_path: Path) -> None:
    flags = tmp_path / "flags.json"
    flags.write_text(json.dumps({"version": "1", "tenants": {"acme": {"tier": "huge"}}}))
    result = subprocess.run(
        [sys.executable, "-m", "ragplane.query"],
        env={**os.environ, "QUERY_FLAGS_FILE": str(flags)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"QUERY_FLAGS_FILE {flags}: key tenants.acme.tier" in result.stderr
