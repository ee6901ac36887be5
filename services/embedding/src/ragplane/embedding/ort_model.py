"""A sentence-transformers model exported to ONNX, run by ONNX Runtime and the tokenizers library
alone: the embedding service's CPU image, which has no torch, sentence-transformers or
transformers. Tokenization, mean or CLS pooling and L2 normalisation follow the model's own
configuration files, so the vectors equal sentence-transformers' on the same export."""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime
from numpy.typing import NDArray
from tokenizers import Tokenizer

# Where sentence-transformers' save_pretrained puts the ONNX export inside the model directory.
ONNX_FILE = Path("onnx") / "model.onnx"


def onnx_session_options(threads: int) -> onnxruntime.SessionOptions:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    # Idle ONNX Runtime threads spin by default, taking the CPU that the event loop needs to
    # accept calls and hand out results between batches.
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _json(path: Path) -> Any:
    return json.loads(path.read_text())


def _pooling_mode(model_dir: Path) -> str:
    """mean or cls, from the model's Pooling module (the modes sentence-transformers models use).

    sentence-transformers 5 writes {"pooling_mode": "mean"}; earlier versions a flag per mode
    ({"pooling_mode_mean_tokens": true}): both are read."""
    modules = _json(model_dir / "modules.json")
    pooling = next((m for m in modules if m["type"].rsplit(".", 1)[-1] == "Pooling"), None)
    if pooling is None:
        raise RuntimeError(f"{model_dir}/modules.json has no Pooling module")
    config = _json(model_dir / pooling["path"] / "config.json")
    flags = {key.removeprefix("pooling_mode_") for key, on in config.items() if on is True}
    mode = config.get("pooling_mode") or (flags.pop() if len(flags) == 1 else sorted(flags))
    if mode in ("mean", "mean_tokens"):
        return "mean"
    if mode in ("cls", "cls_token"):
        return "cls"
    raise RuntimeError(f"pooling {mode} of {model_dir} is not supported (mean or cls)")


class OrtEmbeddingModel:
    """Tokenizes and encodes texts; blocking calls, run off the event loop by the caller."""

    backend = "onnxruntime"
    device = "cpu"

    def __init__(self, model_dir: Path, cpu_threads: int) -> None:
        onnx_file = model_dir / ONNX_FILE
        if not onnx_file.is_file():
            raise RuntimeError(
                f"{onnx_file} not found: EMBEDDING_BACKEND=onnxruntime needs a model exported to"
                " ONNX in EMBEDDING_MODEL_PATH (python -m ragplane.embedding.export_onnx DIR)"
            )
        tokenizer_config = _json(model_dir / "tokenizer_config.json")
        # sentence-transformers 5 keeps the model's limit in the tokenizer's configuration.
        self.max_tokens = int(
            _json(model_dir / "sentence_bert_config.json").get("max_seq_length")
            or tokenizer_config["model_max_length"]
        )
        self.dimensions = int(_json(model_dir / "config.json")["hidden_size"])
        self._pooling = _pooling_mode(model_dir)
        pad_token = str(tokenizer_config["pad_token"])
        self._tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._tokenizer.enable_truncation(self.max_tokens)
        self._tokenizer.enable_padding(
            pad_id=self._tokenizer.token_to_id(pad_token), pad_token=pad_token
        )
        # Counting sees whole texts; a second instance keeps its settings apart.
        self._counting_tokenizer = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
        self._counting_tokenizer.no_truncation()
        self._counting_tokenizer.no_padding()
        threads = cpu_threads or os.cpu_count() or 1
        self._session = onnxruntime.InferenceSession(
            str(onnx_file),
            sess_options=onnx_session_options(threads),
            providers=["CPUExecutionProvider"],
        )
        self._inputs = {node.name for node in self._session.get_inputs()}

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Model tokens of each whole text, special tokens included, before truncation."""
        encoded = self._counting_tokenizer.encode_batch(list(texts), add_special_tokens=True)
        return [len(encoding.ids) for encoding in encoded]

    def encode(self, texts: list[str]) -> NDArray[np.float32]:
        """L2-normalised vectors of the texts, in one forward pass."""
        encoded = self._tokenizer.encode_batch(texts, add_special_tokens=True)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        feeds = {
            "input_ids": np.array([e.ids for e in encoded], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encoded], dtype=np.int64),
        }
        outputs = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})
        hidden = np.asarray(outputs[0], dtype=np.float32)
        if self._pooling == "cls":
            pooled = hidden[:, 0]
        else:
            weights = mask[:, :, np.newaxis].astype(np.float32)
            # The same floor as sentence-transformers' mean pooling.
            pooled = (hidden * weights).sum(axis=1) / np.clip(weights.sum(axis=1), 1e-9, None)
        norms = np.linalg.norm(pooled, axis=1, keepdims=True)
        return np.asarray(pooled / np.clip(norms, 1e-12, None), dtype=np.float32)
