"""Spans a service wrote with RAGPLANE_TRACES_FILE (one JSON object a line)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def spans_by_name(traces_file: Path) -> dict[str, dict[str, Any]]:
    """The last span of each name in the file; empty while the file does not exist."""
    if not traces_file.exists():
        return {}
    spans = [json.loads(line) for line in traces_file.read_text().splitlines() if line]
    return {span["name"]: span for span in spans}
