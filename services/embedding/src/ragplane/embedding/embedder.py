"""Request rules of the embedding service, independent of gRPC."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from ragplane.embedding.model import EmbeddedText, EmbeddingModel
from ragplane.runtime.errors import InvalidArgument


@dataclass(frozen=True)
class EmbedLimits:
    max_texts_per_request: int
    max_chars_per_text: int


class Embedder:
    """Validates embed requests and runs the model off the event loop, one batch at a time."""

    def __init__(self, model: EmbeddingModel, limits: EmbedLimits) -> None:
        self.model = model
        self.limits = limits
        # One worker: the model already uses every core, and parallel calls would only fight.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="embed")

    def _validate(self, texts: Sequence[str]) -> None:
        if not texts:
            raise InvalidArgument.of("texts", "at least one text is required")
        if len(texts) > self.limits.max_texts_per_request:
            raise InvalidArgument.of(
                "texts",
                f"{len(texts)} texts in one call; the limit is {self.limits.max_texts_per_request}",
            )
        for index, text in enumerate(texts):
            if not text.strip():
                raise InvalidArgument.of(f"texts[{index}]", "is empty")
            if len(text) > self.limits.max_chars_per_text:
                raise InvalidArgument.of(
                    f"texts[{index}]",
                    f"has {len(text)} characters; the limit is {self.limits.max_chars_per_text}",
                )

    def _check_lengths(self, texts: Sequence[str]) -> None:
        for index, count in enumerate(self.model.count_tokens(texts)):
            if count > self.model.max_tokens:
                raise InvalidArgument.of(
                    f"texts[{index}]",
                    f"has {count} tokens, more than the model's {self.model.max_tokens}, "
                    "and truncation was refused",
                )

    async def embed(self, texts: Sequence[str], allow_truncation: bool) -> list[EmbeddedText]:
        self._validate(texts)
        loop = asyncio.get_running_loop()
        if not allow_truncation:
            await loop.run_in_executor(self._executor, self._check_lengths, texts)
        return await loop.run_in_executor(self._executor, self.model.embed, texts)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
