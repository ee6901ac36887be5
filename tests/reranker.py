"""A small cross-encoder reranker for tests, trained once per machine and cached.

It is trained (tests/reranker_training.py) on the tutorial pages only and for a few steps (about a
minute on 2 cores, cold), under $RAGPLANE_CACHE/reranker/<key>; warm, it is found at once.
"""

from __future__ import annotations

import os
import subprocess
from functools import cache
from pathlib import Path

from tests.conftest import REPO
from tests.reranker_training import TrainingSettings, build_reranker

TEST_TRAINING = TrainingSettings(steps=10)


@cache
def demo_corpus() -> Path:
    script = REPO / "scripts" / "fetch-corpus.sh"
    out = subprocess.run([str(script)], check=True, capture_output=True, text=True)
    return Path(out.stdout.strip())


@cache
def trained_test_reranker() -> Path:
    cache_root = Path(os.environ.get("RAGPLANE_CACHE", Path.home() / ".cache" / "ragplane"))
    return build_reranker(demo_corpus(), ["tutorial/"], TEST_TRAINING, cache_root)
