"""The embedding CPU image's backend (ONNX Runtime and tokenizers, no torch) against the local
stack's (sentence-transformers on the same ONNX export), in-process: the same vectors to 1e-5
and the same token counts on a hundred texts of many lengths."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from ragplane.embedding.config import EmbeddingSettings
from ragplane.embedding.export_onnx import export
from ragplane.embedding.model import EmbeddingModel
from ragplane.embedding.ort_model import OrtEmbeddingModel
from tests.images.texts import hundred_texts


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("export") / "model"
    settings = EmbeddingSettings()
    export(settings.resolved_model_path(), settings.model_name, dest)
    return dest


def test_the_export_holds_the_onnx_model_and_leaves_the_torch_weights_out(
    exported: Path,
) -> None:
    files = {str(path.relative_to(exported)) for path in exported.rglob("*") if path.is_file()}
    assert {"onnx/model.onnx", "tokenizer.json", "modules.json", "1_Pooling/config.json"} <= files
    assert not [name for name in files if name.endswith((".safetensors", ".bin"))]
    assert not [name for name in files if "qint8" in name]


def test_onnxruntime_alone_gives_sentence_transformers_vectors_and_token_counts(
    exported: Path, tmp_path: Path
) -> None:
    settings = EmbeddingSettings()
    texts = hundred_texts()
    reference = EmbeddingModel(
        settings.resolved_model_path(), "cpu", "onnx", 0, tmp_path, settings.model_name
    )
    alone = OrtEmbeddingModel(exported, 0)
    assert (alone.dimensions, alone.max_tokens) == (reference.dimensions, reference.max_tokens)
    assert alone.count_tokens(texts) == reference.count_tokens(texts)
    assert max(alone.count_tokens(texts)) > alone.max_tokens  # truncation is compared too
    difference = float(np.abs(alone.encode(texts) - reference.encode(texts)).max())
    print(f"largest difference over {len(texts)} texts: {difference:.2e}", file=sys.stderr)
    assert difference < 1e-5


def test_the_onnxruntime_backend_needs_an_exported_model_on_cpu() -> None:
    with pytest.raises(ValueError, match="EMBEDDING_MODEL_PATH"):
        EmbeddingSettings(backend="onnxruntime")
    with pytest.raises(ValueError, match="EMBEDDING_DEVICE"):
        EmbeddingSettings(backend="onnxruntime", model_path=Path("/m"), device="cuda")
