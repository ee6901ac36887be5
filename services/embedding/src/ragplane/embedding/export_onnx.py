"""python -m ragplane.embedding.export_onnx DEST: the bundled model exported to ONNX, with the
configuration files ONNX Runtime and the tokenizer need beside it, written to DEST.

The CPU image's build stage runs this where torch and sentence-transformers are installed; the
image itself gets DEST only (EMBEDDING_BACKEND=onnxruntime, EMBEDDING_MODEL_PATH=DEST)."""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

from ragplane.embedding.config import EmbeddingSettings
from ragplane.embedding.model import onnx_model_dir

# The torch weights and the int8 variant stay behind: the CPU image runs the fp32 export.
LEFT_OUT = ("*.safetensors", "*.bin", "model_qint8_*.onnx", "README.md")


def export(source: Path, name: str, dest: Path) -> None:
    with tempfile.TemporaryDirectory() as scratch:
        exported = onnx_model_dir(source, Path(scratch), name)
        shutil.copytree(exported, dest, ignore=shutil.ignore_patterns(*LEFT_OUT))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("dest", type=Path, help="a directory that does not exist yet")
    dest = parser.parse_args().dest
    settings = EmbeddingSettings()
    export(settings.resolved_model_path(), settings.model_name, dest)
    print(f"exported {settings.model_name} to {dest}")


if __name__ == "__main__":
    main()
