"""The embed path: validate, tokenize, look up the cache, batch the rest through the model."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from ragplane.embedding.backends import EncodingModel
from ragplane.embedding.batcher import DynamicBatcher
from ragplane.embedding.cache import EmbeddingCache
from ragplane.runtime.errors import InvalidArgument
from ragplane.runtime.resilience import Deadline


@dataclass(frozen=True)
class EmbedLimits:
    max_texts_per_request: int
    max_chars_per_text: int


@dataclass(frozen=True)
class EmbeddedText:
    vector: NDArray[np.float32]
    # Model tokens of the whole text, special tokens included.
    token_count: int
    truncated: bool


@dataclass(frozen=True)
class EmbedResult:
    texts: list[EmbeddedText]
    tokenize_s: float
    queue_s: float
    inference_s: float
    cache_hits: int


@dataclass(eq=False)
class Embedder:
    model: EncodingModel
    batcher: DynamicBatcher
    cache: EmbeddingCache | None
    limits: EmbedLimits
    # One thread, apart from the model's: the tokenizer is not safe for concurrent use, and
    # a call with hundreds of long texts must not stall the event loop.
    _tokenizer_thread: ThreadPoolExecutor = field(
        init=False,
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="tokenize"),
    )

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

    async def _count_tokens(self, texts: Sequence[str]) -> list[int]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._tokenizer_thread, self.model.count_tokens, texts)

    def _refuse_truncation(self, token_counts: Sequence[int]) -> None:
        for index, count in enumerate(token_counts):
            if count > self.model.max_tokens:
                raise InvalidArgument.of(
                    f"texts[{index}]",
                    f"has {count} tokens, more than the model's {self.model.max_tokens}, "
                    "and truncation was refused",
                )

    async def embed(
        self, texts: Sequence[str], allow_truncation: bool, deadline: Deadline
    ) -> EmbedResult:
        """Vectors for the texts, in order, unless ``deadline`` passes while they wait."""
        self._validate(texts)
        started = time.perf_counter()
        token_counts = await self._count_tokens(texts)
        if not allow_truncation:
            self._refuse_truncation(token_counts)
        tokenize_s = time.perf_counter() - started

        cached = await self.cache.get_many(texts) if self.cache else [None] * len(texts)
        missing = [index for index, vector in enumerate(cached) if vector is None]
        vectors = list(cached)
        queue_s = inference_s = 0.0
        if missing:
            batched = await self.batcher.embed(
                [texts[i] for i in missing],
                [min(token_counts[i], self.model.max_tokens) for i in missing],
                deadline,
            )
            for index, vector in zip(missing, batched.vectors, strict=True):
                vectors[index] = vector
            queue_s, inference_s = batched.queue_s, batched.inference_s
            if self.cache:
                await self.cache.put_many([texts[i] for i in missing], batched.vectors)
        return EmbedResult(
            [
                EmbeddedText(vector, count, count > self.model.max_tokens)
                for vector, count in zip(vectors, token_counts, strict=True)
                if vector is not None
            ],
            tokenize_s,
            queue_s,
            inference_s,
            cache_hits=len(texts) - len(missing),
        )
