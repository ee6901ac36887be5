"""Answers through a chain of OpenAI-compatible providers, never leaving the caller without one.

Per request: route to a tier, then try that tier's providers in configured order (then the
others), each behind its circuit breaker, with retries of retryable failures inside the
caller's deadline; when none answers, extract an answer from the top passages.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Generic, Literal, TypeVar

import structlog

from ragplane.generation import metrics
from ragplane.generation.breakers import (
    BreakerStatus,
    SharedBreakerStorage,
    breaker_status,
    new_breaker,
)
from ragplane.generation.config import GenerationSettings, ProviderSettings, Tier
from ragplane.generation.fitting import FittedPrompt, fit_prompt
from ragplane.generation.pricing import cost_usd
from ragplane.generation.prompt import (
    PROMPT_CITED,
    SYSTEM_PROMPTS,
    ContextPassage,
    cited_passage_numbers,
)
from ragplane.generation.providers import Completion, Provider, ProviderFailure, TextStream
from ragplane.generation.router import Route, route
from ragplane.runtime.errors import InvalidArgument, Unavailable
from ragplane.runtime.extractive import extractive_answer
from ragplane.runtime.fields import (
    check_max_output_tokens,
    check_question,
    check_temperature,
    check_tenant,
)
from ragplane.runtime.redis_client import SharedRedis
from ragplane.runtime.resilience import Backoff, CircuitOpen, Deadline
from ragplane.runtime.telemetry import BoundedLabel

log = structlog.get_logger(__name__)

Outcome = Literal["succeeded", "failed", "skipped"]


@dataclass(frozen=True)
class Attempt:
    provider: str
    outcome: Outcome
    reason: str = ""
    http_status: int = 0
    calls: int = 0
    duration_ms: float = 0.0


@dataclass(frozen=True)
class Answer:
    text: str
    cited: list[ContextPassage]
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: str
    cost_usd: float = 0.0
    tier: Tier = "small"
    tier_reason: str = ""
    attempts: list[Attempt] = field(default_factory=list)
    # Set when no model answered and the text was extracted from the passages.
    degraded_reason: str | None = None
    passages_dropped: int = 0
    # Set when not every passage fitted the provider's context window (said as a degradation).
    context_note: str | None = None
    # Streams only.
    time_to_first_token_ms: float = 0.0


@dataclass(frozen=True)
class ProviderStatus:
    settings: ProviderSettings
    breaker: BreakerStatus


T = TypeVar("T")
# One call to a provider with a prompt and a timeout: a completion, or a stream's first text.
ProviderCall = Callable[[Provider, FittedPrompt, float], Awaitable[T]]


@dataclass
class _Outcome(Generic[T]):
    attempt: Attempt
    result: T | None = None
    prompt: FittedPrompt | None = None


@dataclass(frozen=True)
class _Request:
    question: str
    passages: Sequence[ContextPassage]
    max_tokens: int
    temperature: float
    deadline: Deadline
    route: Route
    tenant: str
    # The prompt version's instructions.
    system: str


@dataclass(frozen=True)
class AnswerRequest:
    """What a caller asks the generator for; the gRPC edge builds it from the contract."""

    question: str
    passages: Sequence[ContextPassage]
    # 0: the configured default.
    max_output_tokens: int = 0
    # None: the configured default.
    temperature: float | None = None
    # None: no deadline.
    timeout_s: float | None = None
    # For cost accounting only; empty is allowed.
    tenant: str = ""
    # None lets the router choose.
    tier: Tier | None = None
    # A PROMPT_* value of prompt.py; 0: PROMPT_CITED.
    prompt_version: int = 0


class Generator:
    """The provider chain; failures become attempts in the answer, not errors for the caller."""

    def __init__(
        self,
        settings: GenerationSettings,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._settings = settings
        self._sleep = sleep
        self._backoff = Backoff(settings.retry_base_delay_s, settings.retry_max_delay_s)
        self._tenant_label = BoundedLabel(settings.metrics_max_tenants)
        default_key = settings.api_key.get_secret_value()
        self._providers = [Provider(p, default_key) for p in settings.chain()]
        self._redis = (
            SharedRedis.connect("generation-breaker-redis", settings)
            if settings.redis_enabled
            else None
        )
        self._shared_states: list[SharedBreakerStorage] = []
        self._syncing: asyncio.Task[None] | None = None
        self._breakers = {
            p.name: new_breaker(
                p.name,
                settings.breaker_fail_max,
                settings.breaker_reset_timeout_s,
                self._breaker_storage(p.name),
            )
            for p in self._providers
        }

    def _breaker_storage(self, provider: str) -> SharedBreakerStorage | None:
        """Shared through Redis when one is configured; None keeps it in this process."""
        if self._redis is None:
            return None
        storage = SharedBreakerStorage(
            provider, self._redis, self._settings.breaker_redis_namespace
        )
        self._shared_states.append(storage)
        return storage

    async def start(self) -> None:
        """Read the shared breaker states once, then keep them in step in the background."""
        if not self._shared_states:
            return
        await self._sync_breakers()
        self._syncing = asyncio.create_task(self._keep_breakers_in_step())

    async def _sync_breakers(self) -> None:
        for storage in self._shared_states:
            await storage.sync()

    async def _keep_breakers_in_step(self) -> None:
        while True:
            await asyncio.sleep(self._settings.breaker_sync_interval_s)
            await self._sync_breakers()

    def statuses(self) -> list[ProviderStatus]:
        """Every configured provider with its breaker, in chain order."""
        return [
            ProviderStatus(p.settings, breaker_status(self._breakers[p.name]))
            for p in self._providers
        ]

    def validate(self, asked: AnswerRequest) -> None:
        limits = self._settings
        question, passages, tenant = asked.question, asked.passages, asked.tenant
        if tenant:
            # Optional here (cost accounting only); when given, the same rule as everywhere.
            check_tenant(tenant)
        check_question(question, "question", limits.max_question_chars)
        check_temperature(asked.temperature)
        if len(passages) > limits.max_passages:
            raise InvalidArgument.of(
                "passages", f"{len(passages)} passages; the limit is {limits.max_passages}"
            )
        for index, passage in enumerate(passages):
            if len(passage.text) > limits.max_passage_chars:
                raise InvalidArgument.of(
                    f"passages[{index}].text",
                    f"has {len(passage.text)} characters; the limit is {limits.max_passage_chars}",
                )
        check_max_output_tokens(asked.max_output_tokens, limits.max_output_tokens_limit)
        if asked.prompt_version and asked.prompt_version not in SYSTEM_PROMPTS:
            raise InvalidArgument.of("prompt_version", f"{asked.prompt_version} is not a version")

    def _request(self, asked: AnswerRequest) -> _Request:
        self.validate(asked)
        settings = self._settings
        question, passages, tier = asked.question, asked.passages, asked.tier
        timeout_s, temperature = asked.timeout_s, asked.temperature
        return _Request(
            question=question,
            passages=passages,
            max_tokens=asked.max_output_tokens or settings.default_max_output_tokens,
            temperature=settings.default_temperature if temperature is None else temperature,
            deadline=Deadline(
                None if timeout_s is None else timeout_s - settings.deadline_reserve_s
            ),
            route=Route(tier, "forced by the request") if tier else route(question, len(passages)),
            tenant=asked.tenant,
            system=SYSTEM_PROMPTS[asked.prompt_version or PROMPT_CITED],
        )

    def _chain(self, chosen: Route) -> list[Provider]:
        # The routed tier first; the other tier still beats no answer at all.
        chain = [p for p in self._providers if p.settings.tier == chosen.tier]
        return chain + [p for p in self._providers if p.settings.tier != chosen.tier]

    async def answer(self, asked: AnswerRequest) -> Answer:
        request = self._request(asked)

        async def complete(provider: Provider, prompt: FittedPrompt, limit_s: float) -> Completion:
            return await provider.complete(
                prompt.messages, request.max_tokens, request.temperature, limit_s
            )

        attempts: list[Attempt] = []
        for provider in self._chain(request.route):
            outcome = await self._try(provider, request, complete)
            attempts.append(outcome.attempt)
            metrics.ATTEMPTS.labels(provider.name, outcome.attempt.outcome).inc()
            if outcome.result is not None and outcome.prompt is not None:
                completion = outcome.result
                return self._model_answer(
                    provider,
                    completion.text,
                    completion.model,
                    completion.finish_reason,
                    completion.input_tokens,
                    completion.output_tokens,
                    outcome.prompt,
                    request,
                    attempts,
                )
        return self._extractive(request, attempts)

    async def stream(self, asked: AnswerRequest) -> AsyncGenerator[str | Answer, None]:
        """Text deltas as they come, then the complete Answer (with time to first token)."""
        started = time.monotonic()
        request = self._request(asked)
        idle_timeout_s = self._settings.stream_idle_timeout_s

        async def open_stream(
            provider: Provider, prompt: FittedPrompt, limit_s: float
        ) -> tuple[TextStream, str]:
            return await provider.open_stream(
                prompt.messages, request.max_tokens, request.temperature, limit_s, idle_timeout_s
            )

        attempts: list[Attempt] = []
        for provider in self._chain(request.route):
            outcome = await self._try(provider, request, open_stream)
            attempts.append(outcome.attempt)
            metrics.ATTEMPTS.labels(provider.name, outcome.attempt.outcome).inc()
            if outcome.result is None or outcome.prompt is None:
                continue
            # Committed to this provider from here on: no fallback may splice in another's text.
            text_stream, first = outcome.result
            pieces = [first]
            ttft_ms = (time.monotonic() - started) * 1000
            metrics.TTFT.labels(provider.name).observe(ttft_ms / 1000)
            try:
                if first:
                    yield first
                while (piece := await text_stream.next_text()) is not None:
                    pieces.append(piece)
                    yield piece
            except ProviderFailure as failure:
                # The caller has part of an answer; say how it ended instead of pretending.
                raise Unavailable(
                    f"LLM provider {provider.name} failed mid-stream after "
                    f"{len(''.join(pieces))} characters: {failure.reason}"
                ) from failure
            finally:
                # Also on cancellation: stops the upstream generation.
                await text_stream.close()
            answer = self._model_answer(
                provider,
                "".join(pieces),
                text_stream.model or provider.settings.model,
                text_stream.finish_reason,
                text_stream.input_tokens,
                text_stream.output_tokens,
                outcome.prompt,
                request,
                attempts,
            )
            yield replace(answer, time_to_first_token_ms=ttft_ms)
            return
        answer = self._extractive(request, attempts)
        yield answer.text
        yield replace(answer, time_to_first_token_ms=(time.monotonic() - started) * 1000)

    async def _try(
        self, provider: Provider, request: _Request, call: ProviderCall[T]
    ) -> _Outcome[T]:
        """One provider: breaker, context fitting, then calls with retries inside the deadline."""
        settings = self._settings
        question, passages, deadline = request.question, request.passages, request.deadline
        name = provider.name
        breaker = self._breakers[name]
        if breaker.is_open:
            return _Outcome(Attempt(name, "skipped", "circuit breaker open"))
        budget = (
            provider.settings.context_window - request.max_tokens - settings.context_margin_tokens
        )
        prompt = fit_prompt(question, passages, budget, provider.count_tokens, request.system)
        if prompt is None:
            return _Outcome(
                Attempt(name, "skipped", f"question does not fit its {budget}-token prompt budget")
            )

        started = time.monotonic()
        calls = 0
        overflow_retried = False
        last: ProviderFailure | None = None
        reason = ""

        def attempt(outcome: Outcome, why: str) -> Attempt:
            return Attempt(
                name,
                outcome,
                why,
                last.http_status if last else 0,
                calls,
                (time.monotonic() - started) * 1000,
            )

        while True:
            remaining = deadline.seconds_left()
            if remaining is not None and remaining < settings.min_call_time_s:
                why = f"{reason}; no time left" if reason else "no time left for a call"
                return _Outcome(attempt("failed" if calls else "skipped", why))
            timeout = provider.settings.request_timeout_s
            if remaining is not None:
                timeout = min(timeout, remaining)
            try:
                result = await breaker.call(partial(call, provider, prompt, timeout))
            except CircuitOpen:
                # Another request opened it while this one waited.
                why = f"{reason}; circuit breaker open" if reason else "circuit breaker open"
                return _Outcome(attempt("failed" if calls else "skipped", why))
            except ProviderFailure as failure:
                calls += 1
                last = failure
                reason = failure.reason if calls == 1 else f"{failure.reason} (call {calls})"
                log.warning("llm provider failed", provider=name, reason=failure.reason)
                if failure.context_overflow and not overflow_retried and prompt.passages:
                    # Our estimate was too low for this tokenizer: halve the context, once.
                    overflow_retried = True
                    kept = prompt.passages[: len(prompt.passages) // 2]
                    smaller = fit_prompt(
                        question, kept, budget, provider.count_tokens, request.system
                    )
                    if smaller is not None:
                        prompt = replace(smaller, dropped=len(passages) - len(smaller.passages))
                        continue
                if not failure.retryable:
                    return _Outcome(attempt("failed", reason))
                if breaker.is_open:
                    return _Outcome(attempt("failed", f"{reason}; circuit breaker opened"))
                if calls >= settings.retry_max_attempts:
                    return _Outcome(attempt("failed", f"{reason}; gave up after {calls} calls"))
                delay = self._backoff.delay(calls - 1, failure.retry_after_s)
                if not deadline.allows(delay + settings.min_call_time_s):
                    why = f"{reason}; a retry in {delay:.1f}s would miss the deadline"
                    return _Outcome(attempt("failed", why))
                await self._sleep(delay)
                continue
            calls += 1
            why = f"answered on call {calls}, after {reason}" if reason else ""
            elapsed_ms = (time.monotonic() - started) * 1000
            # HTTP 200: the status of the reply that answered, not of an earlier failure.
            done = Attempt(name, "succeeded", why, 200, calls, elapsed_ms)
            return _Outcome(done, result, prompt)

    def _model_answer(
        self,
        provider: Provider,
        text: str,
        model: str,
        finish_reason: str,
        input_tokens: int | None,
        output_tokens: int | None,
        prompt: FittedPrompt,
        request: _Request,
        attempts: list[Attempt],
    ) -> Answer:
        # Servers that omit usage (llama.cpp when streaming) are counted locally: with the
        # provider's tokenizer when known, else over- rather than under-estimating.
        if input_tokens is None:
            input_tokens = prompt.estimated_tokens
        if output_tokens is None:
            output_tokens = provider.count_tokens(text)
        cost = cost_usd(provider.settings, input_tokens, output_tokens)
        tenant = self._tenant_label(request.tenant or "-")
        labels = {"provider": provider.name, "model": model, "tenant": tenant}
        metrics.TOKENS.labels(**labels, direction="input").inc(input_tokens)
        metrics.TOKENS.labels(**labels, direction="output").inc(output_tokens)
        metrics.COST_USD.labels(**labels).inc(cost)
        cited = cited_passage_numbers(text, len(prompt.passages))
        return Answer(
            text=text,
            cited=[prompt.passages[n - 1] for n in cited],
            provider=provider.name,
            model=model,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            finish_reason=finish_reason,
            cost_usd=cost,
            tier=provider.settings.tier,
            tier_reason=request.route.reason,
            attempts=attempts,
            passages_dropped=prompt.dropped,
            context_note=_context_note(prompt, len(request.passages), provider.name),
        )

    def _extractive(self, request: _Request, attempts: list[Attempt]) -> Answer:
        metrics.EXTRACTIVE.inc()
        why = "; ".join(f"{a.provider}: {a.reason}" for a in attempts) or "no provider configured"
        extracted = extractive_answer(request.passages, self._settings.extractive_passages)
        return Answer(
            text=extracted.text,
            cited=extracted.cited,
            provider="",
            model="",
            input_tokens=0,
            output_tokens=0,
            finish_reason="extractive",
            tier=request.route.tier,
            tier_reason=request.route.reason,
            attempts=attempts,
            degraded_reason=f"no LLM provider answered ({why}); answer extracted from passages",
        )

    async def close(self) -> None:
        for provider in self._providers:
            await provider.close()
        if self._syncing is not None:
            self._syncing.cancel()
        if self._redis is not None:
            await self._redis.close()


def _context_note(prompt: FittedPrompt, given: int, provider: str) -> str | None:
    window = f"to fit the context window of {provider}"
    if prompt.dropped and prompt.cut:
        return f"{prompt.dropped} of {given} passages were left out and one was cut short {window}"
    if prompt.dropped:
        return f"{prompt.dropped} of {given} passages were left out {window}"
    if prompt.cut:
        return f"the last passage was cut short {window}"
    return None
