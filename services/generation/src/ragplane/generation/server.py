"""gRPC face of the generation service."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc

from ragplane.generation.config import GenerationSettings, Tier
from ragplane.generation.generator import Answer, AnswerRequest, Attempt, Generator, ProviderStatus
from ragplane.generation.prompt import ContextPassage
from ragplane.runtime.context import RpcContext
from ragplane.runtime.messages import usage_message
from ragplane.runtime.readiness import WarmedUp
from ragplane.runtime.resilience import CLOSED, HALF_OPEN, OPEN
from ragplane.v1 import common_pb2, generation_pb2, generation_pb2_grpc


def _asked(request: generation_pb2.GenerateRequest, context: RpcContext) -> AnswerRequest:
    return AnswerRequest(
        request.question,
        _passages(request),
        request.max_output_tokens,
        request.temperature if request.HasField("temperature") else None,
        context.time_remaining(),
        tenant=request.tenant,
        tier=_TIERS_IN.get(request.tier),
        prompt_version=request.prompt_version,
    )


@dataclass(frozen=True)
class GenerationServicer(generation_pb2_grpc.GenerationServiceServicer):
    generator: WarmedUp[Generator]

    async def Generate(
        self, request: generation_pb2.GenerateRequest, context: RpcContext
    ) -> generation_pb2.GenerateResponse:
        answer = await self.generator.get().answer(_asked(request, context))
        return response_of(answer)

    async def GenerateStream(
        self, stream_request: generation_pb2.GenerateStreamRequest, context: RpcContext
    ) -> AsyncIterator[generation_pb2.GenerateStreamResponse]:
        events = self.generator.get().stream(_asked(stream_request.request, context))
        # aclosing: a caller that cancels while a delta is being sent still closes the
        # generator at once, and with it the upstream request.
        async with contextlib.aclosing(events):
            async for event in events:
                if isinstance(event, str):
                    yield generation_pb2.GenerateStreamResponse(text_delta=event)
                else:
                    yield generation_pb2.GenerateStreamResponse(done=response_of(event))

    async def Providers(
        self, request: generation_pb2.ProvidersRequest, context: RpcContext
    ) -> generation_pb2.ProvidersResponse:
        return generation_pb2.ProvidersResponse(
            providers=[_provider_status(status) for status in self.generator.get().statuses()]
        )


def _passages(request: generation_pb2.GenerateRequest) -> list[ContextPassage]:
    return [ContextPassage(p.document_id, p.chunk_id, p.text, p.score) for p in request.passages]


_TIERS_IN: dict[generation_pb2.ModelTier.ValueType, Tier] = {
    generation_pb2.MODEL_TIER_SMALL: "small",
    generation_pb2.MODEL_TIER_LARGE: "large",
}
_TIERS_OUT: dict[Tier, generation_pb2.ModelTier.ValueType] = {
    name: value for value, name in _TIERS_IN.items()
}
_OUTCOMES = {
    "succeeded": generation_pb2.ATTEMPT_OUTCOME_SUCCEEDED,
    "failed": generation_pb2.ATTEMPT_OUTCOME_FAILED,
    "skipped": generation_pb2.ATTEMPT_OUTCOME_SKIPPED,
}


_BREAKER_STATES = {
    CLOSED: generation_pb2.BREAKER_STATE_CLOSED,
    HALF_OPEN: generation_pb2.BREAKER_STATE_HALF_OPEN,
    OPEN: generation_pb2.BREAKER_STATE_OPEN,
}
_BREAKER_STORAGES = {
    "shared": generation_pb2.BREAKER_STORAGE_SHARED,
    "local": generation_pb2.BREAKER_STORAGE_LOCAL,
}


def _provider_status(status: ProviderStatus) -> generation_pb2.ProviderStatus:
    return generation_pb2.ProviderStatus(
        name=status.settings.name,
        tier=_TIERS_OUT[status.settings.tier],
        model=status.settings.model,
        breaker_state=_BREAKER_STATES[status.breaker.state],
        failure_count=status.breaker.failures,
        breaker_storage=_BREAKER_STORAGES[status.breaker.storage],
    )


def _attempt(attempt: Attempt) -> generation_pb2.ProviderAttempt:
    return generation_pb2.ProviderAttempt(
        provider=attempt.provider,
        outcome=_OUTCOMES[attempt.outcome],
        reason=attempt.reason,
        http_status=attempt.http_status,
        calls=attempt.calls,
        duration_ms=attempt.duration_ms,
    )


def response_of(answer: Answer) -> generation_pb2.GenerateResponse:
    degradations = []
    if answer.degraded_reason is not None:
        degradations.append(
            common_pb2.Degradation(stage=common_pb2.STAGE_GENERATION, reason=answer.degraded_reason)
        )
    if answer.context_note is not None:
        degradations.append(
            common_pb2.Degradation(
                stage=common_pb2.STAGE_GENERATION,
                cause=common_pb2.DEGRADATION_CAUSE_CONTEXT_LIMIT,
                reason=answer.context_note,
            )
        )
    return generation_pb2.GenerateResponse(
        text=answer.text,
        citations=[
            common_pb2.Citation(document_id=p.document_id, chunk_id=p.chunk_id, score=p.score)
            for p in answer.cited
        ],
        provider=answer.provider,
        model=answer.model,
        usage=usage_message(answer),
        finish_reason=answer.finish_reason,
        cost_usd=answer.cost_usd,
        tier=_TIERS_OUT[answer.tier],
        tier_reason=answer.tier_reason,
        attempts=[_attempt(a) for a in answer.attempts],
        degradations=degradations,
        passages_dropped=answer.passages_dropped,
        time_to_first_token_ms=answer.time_to_first_token_ms,
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
        generator = Generator(self._settings)
        await generator.start()
        self._generator.set(generator)

    async def close(self) -> None:
        generator = self._generator.peek()
        if generator is not None:
            await generator.close()
