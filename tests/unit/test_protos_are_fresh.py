"""The committed Python stubs are what the protos generate today."""

from __future__ import annotations

import filecmp
import subprocess
import sys
from pathlib import Path

from tests.conftest import REPO

PACKAGE = REPO / "protos" / "python" / "src"


def test_generated_stubs_match_the_protos(tmp_path: Path) -> None:
    subprocess.run(
        [str(REPO / "scripts" / "gen-protos.sh"), str(tmp_path)],
        check=True,
        capture_output=True,
        env={"PYTHON": sys.executable, "PATH": "/usr/bin:/bin"},
    )
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    committed = sorted(
        p.relative_to(PACKAGE)
        for p in PACKAGE.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    )
    assert fresh == committed, "run `make protos`: the set of generated files changed"
    stale = [str(p) for p in fresh if not filecmp.cmp(tmp_path / p, PACKAGE / p, shallow=False)]
    assert not stale, f"run `make protos`: these stubs are stale: {stale}"
