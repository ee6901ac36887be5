"""Feature flags, A/B variants and shadow generation in tests: the flags file, a generation
service with a small and a large tier, and the shadow's JSON-lines records."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ragplane.cli.stack import Stack
from tests.integration.generation_chain import chain_env, provider
from tests.integration.services import RunningService, service_process

RELOADS = "ragplane_query_flags_reloads_total"


def write_flags(path: Path, flags: dict[str, Any]) -> None:
    """Replace the file whole, as a ConfigMap update does (a reader never sees half of it)."""
    staged = path.with_suffix(".staged")
    staged.write_text(json.dumps(flags))
    staged.replace(path)


def reloads(service: RunningService, outcome: str) -> float:
    return service.metric(RELOADS, f'outcome="{outcome}"')


@contextmanager
def tiered_generation(stack: Stack, log_dir: Path) -> Iterator[RunningService]:
    """A generation service whose small tier is the stack's first LLM server and whose large
    tier is its second: a response's provider shows which tier answered."""
    env = chain_env(
        provider("small-llm", stack.ports.llm, tier="small"),
        provider("large-llm", stack.ports.llm2, tier="large"),
    )
    with service_process("generation", env, log_dir) as service:
        yield service


def shadow_records(path: Path) -> list[dict[str, Any]]:
    """The shadow pairs recorded so far (none while the file does not exist)."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]
