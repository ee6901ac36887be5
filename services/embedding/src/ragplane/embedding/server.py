"""gRPC face of the embedding service."""

from __future__ import annotations

import asyncio

import grpc
import structlog

from ragplane.embedding.backends import load_model
from ragplane.embedding.batcher import BatchLimits, DynamicBatcher
from ragplane.embedding.cache import EmbeddingCache
from ragplane.embedding.config import EmbeddingSettings
from ragplane.embedding.embedder import Embedder, EmbedLimits
from ragplane.runtime.context import RpcContext
from ragplane.runtime.readiness import WarmedUp
from ragplane.runtime.redis_client import SharedRedis
from ragplane.runtime.resilience import Deadline
from ragplane.v1 import embedding_pb2, embedding_pb2_grpc

log = structlog.get_logger(__name__)


class EmbeddingServicer(embedding_pb2_grpc.EmbeddingServiceServicer):
    def __init__(self, embedder: WarmedUp[Embedder], settings: EmbeddingSettings) -> None:
        self._embedder = embedder
        self._settings = settings

    async def Embed(
        self, request: embedding_pb2.EmbedRequest, context: RpcContext
    ) -> embedding_pb2.EmbedResponse:
        embedder = self._embedder.get()
        deadline = Deadline(context.time_remaining())
        allow_truncation = request.truncation != embedding_pb2.TRUNCATION_POLICY_REJECT
        result = await embedder.embed(list(request.texts), allow_truncation, deadline)
        return embedding_pb2.EmbedResponse(
            embeddings=[
                embedding_pb2.Embedding(
                    values=item.vector.tolist(),
                    token_count=item.token_count,
                    truncated=item.truncated,
                )
                for item in result.texts
            ],
            model=self._settings.model_name,
            dimensions=embedder.model.dimensions,
            timings=embedding_pb2.EmbedTimings(
                tokenize_ms=result.tokenize_s * 1000,
                queue_ms=result.queue_s * 1000,
                inference_ms=result.inference_s * 1000,
            ),
            cache_hits=result.cache_hits,
        )

    async def Info(
        self, request: embedding_pb2.InfoRequest, context: RpcContext
    ) -> embedding_pb2.InfoResponse:
        embedder = self._embedder.get()
        return embedding_pb2.InfoResponse(
            model=self._settings.model_name,
            dimensions=embedder.model.dimensions,
            max_tokens=embedder.model.max_tokens,
            device=embedder.model.device,
            max_texts_per_request=embedder.limits.max_texts_per_request,
            max_chars_per_text=embedder.limits.max_chars_per_text,
            backend=embedder.model.backend,
            max_batch_size=self._settings.max_batch_size,
            max_batch_tokens=self._settings.max_batch_tokens,
        )


class EmbeddingApplication:
    service_names = (embedding_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name,)

    def __init__(self, settings: EmbeddingSettings) -> None:
        self._settings = settings
        self._embedder: WarmedUp[Embedder] = WarmedUp("the embedding model")
        self._batcher: DynamicBatcher | None = None
        self._cache: EmbeddingCache | None = None

    def register(self, server: grpc.aio.Server) -> None:
        servicer = EmbeddingServicer(self._embedder, self._settings)
        embedding_pb2_grpc.add_EmbeddingServiceServicer_to_server(servicer, server)

    async def warm_up(self) -> None:
        settings = self._settings
        log.info("loading model", path=str(settings.resolved_model_path()))
        model = await asyncio.to_thread(load_model, settings)
        # The first forward pass allocates and compiles; pay for it before reporting SERVING.
        await asyncio.to_thread(model.encode, ["warm-up"])
        self._batcher = DynamicBatcher(
            model.encode,
            BatchLimits(
                max_batch_size=settings.max_batch_size,
                max_batch_tokens=settings.max_batch_tokens,
                max_wait_s=settings.max_wait_ms / 1000,
                max_queued_requests=settings.max_queued_requests,
                max_queued_tokens=settings.max_queued_tokens,
            ),
        )
        self._batcher.start()
        if settings.redis_enabled:
            redis = SharedRedis.connect("embedding-cache-redis", settings)
            self._cache = EmbeddingCache(redis, settings.model_name, settings.cache_ttl_s)
        limits = EmbedLimits(settings.max_texts_per_request, settings.max_chars_per_text)
        self._embedder.set(Embedder(model, self._batcher, self._cache, limits))
        log.info(
            "model ready",
            dimensions=model.dimensions,
            max_tokens=model.max_tokens,
            backend=model.backend,
            device=model.device,
            cache=settings.redis_enabled,
        )

    async def close(self) -> None:
        if self._batcher is not None:
            await self._batcher.stop()
        if self._cache is not None:
            await self._cache.close()
