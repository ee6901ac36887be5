"""gRPC face of the embedding service."""

from __future__ import annotations

import asyncio

import grpc
import structlog

from ragplane.embedding.config import EmbeddingSettings
from ragplane.embedding.embedder import Embedder, EmbedLimits
from ragplane.embedding.model import EmbeddingModel, pick_device
from ragplane.runtime.context import RpcContext
from ragplane.runtime.readiness import WarmedUp
from ragplane.v1 import embedding_pb2, embedding_pb2_grpc

log = structlog.get_logger(__name__)


class EmbeddingServicer(embedding_pb2_grpc.EmbeddingServiceServicer):
    def __init__(self, embedder: WarmedUp[Embedder], model_name: str) -> None:
        self._embedder = embedder
        self._model_name = model_name

    async def Embed(
        self, request: embedding_pb2.EmbedRequest, context: RpcContext
    ) -> embedding_pb2.EmbedResponse:
        embedder = self._embedder.get()
        allow_truncation = request.truncation != embedding_pb2.TRUNCATION_POLICY_REJECT
        embedded = await embedder.embed(list(request.texts), allow_truncation)
        return embedding_pb2.EmbedResponse(
            embeddings=[
                embedding_pb2.Embedding(
                    values=item.vector.tolist(),
                    token_count=item.token_count,
                    truncated=item.truncated,
                )
                for item in embedded
            ],
            model=self._model_name,
            dimensions=embedder.model.dimensions,
        )

    async def Info(
        self, request: embedding_pb2.InfoRequest, context: RpcContext
    ) -> embedding_pb2.InfoResponse:
        embedder = self._embedder.get()
        return embedding_pb2.InfoResponse(
            model=self._model_name,
            dimensions=embedder.model.dimensions,
            max_tokens=embedder.model.max_tokens,
            device=embedder.model.device,
            max_texts_per_request=embedder.limits.max_texts_per_request,
            max_chars_per_text=embedder.limits.max_chars_per_text,
        )


class EmbeddingApplication:
    service_names = (embedding_pb2.DESCRIPTOR.services_by_name["EmbeddingService"].full_name,)

    def __init__(self, settings: EmbeddingSettings) -> None:
        self._settings = settings
        self._embedder: WarmedUp[Embedder] = WarmedUp("the embedding model")

    def register(self, server: grpc.aio.Server) -> None:
        servicer = EmbeddingServicer(self._embedder, self._settings.model_name)
        embedding_pb2_grpc.add_EmbeddingServiceServicer_to_server(servicer, server)

    async def warm_up(self) -> None:
        settings = self._settings
        path = settings.resolved_model_path()
        device = pick_device(settings.device)
        log.info("loading model", path=str(path), device=device)
        model = await asyncio.to_thread(
            EmbeddingModel, path, device, settings.batch_size, settings.cpu_threads
        )
        embedder = Embedder(
            model, EmbedLimits(settings.max_texts_per_request, settings.max_chars_per_text)
        )
        # The first forward pass allocates and compiles; pay for it before reporting SERVING.
        await embedder.embed(["warm-up"], allow_truncation=True)
        self._embedder.set(embedder)
        log.info("model ready", dimensions=model.dimensions, max_tokens=model.max_tokens)

    async def close(self) -> None:
        embedder = self._embedder.peek()
        if embedder is not None:
            embedder.close()
