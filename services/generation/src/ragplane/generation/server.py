"""gRPC face of the generation service."""

from __future__ import annotations

import grpc

from ragplane.generation.config import GenerationSettings
from ragplane.generation.generator import Generator
from ragplane.generation.prompt import ContextPassage
from ragplane.runtime.context import RpcContext
from ragplane.runtime.readiness import WarmedUp
from ragplane.v1 import common_pb2, generation_pb2, generation_pb2_grpc


class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    def __init__(self, generator: WarmedUp[Generator]) -> None:
        self._generator = generator

    async def Generate(
        self, request: generation_pb2.GenerateRequest, context: RpcContext
    ) -> generation_pb2.GenerateResponse:
        passages = [
            ContextPassage(p.document_id, p.chunk_id, p.text, p.score) for p in request.passages
        ]
        answer = await self._generator.get().answer(
            request.question,
            passages,
            request.max_output_tokens,
            request.temperature if request.HasField("temperature") else None,
            context.time_remaining(),
        )
        return generation_pb2.GenerateResponse(
            text=answer.text,
            citations=[
                common_pb2.Citation(document_id=p.document_id, chunk_id=p.chunk_id, score=p.score)
                for p in answer.cited
            ],
            provider=answer.provider,
            model=answer.model,
            usage=common_pb2.TokenUsage(
                input_tokens=answer.input_tokens, output_tokens=answer.output_tokens
            ),
            finish_reason=answer.finish_reason,
        )


class GenerationApplication:
    service_names = (generation_pb2.DESCRIPTOR.services_by_name["GenerationService"].full_name,)

    def __init__(self, settings: GenerationSettings) -> None:
        self._settings = settings
        self._generator: WarmedUp[Generator] = WarmedUp("the LLM client")

    def register(self, server: grpc.aio.Server) -> None:
        generation_pb2_grpc.add_GenerationServiceServicer_to_server(
            GenerationServicer(self._generator), server
        )

    async def warm_up(self) -> None:
        # No call to the provider here: a provider that is down must not keep this service
        # from serving; each request reports the provider's state instead.
        self._generator.set(Generator(self._settings))

    async def close(self) -> None:
        generator = self._generator.peek()
        if generator is not None:
            await generator.close()
