"""Answers from an OpenAI-compatible chat completions API."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import openai
import structlog

from ragplane.generation.config import GenerationSettings
from ragplane.generation.prompt import ContextPassage, build_messages, cited_passage_numbers
from ragplane.runtime.errors import (
    DeadlineExceeded,
    InvalidArgument,
    ResourceExhausted,
    ServiceError,
    Unavailable,
)

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Answer:
    text: str
    cited: list[ContextPassage]
    provider: str
    model: str
    input_tokens: int
    output_tokens: int
    finish_reason: str


class Generator:
    """One provider behind the openai client; failures become errors a caller can act on."""

    def __init__(self, settings: GenerationSettings) -> None:
        self._settings = settings
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=settings.api_key.get_secret_value(),
            timeout=settings.request_timeout_s,
            # Retries and fallback are decided per request by the caller's deadline, not here.
            max_retries=0,
        )

    def validate(
        self, question: str, passages: Sequence[ContextPassage], max_output_tokens: int
    ) -> None:
        limits = self._settings
        if not question.strip():
            raise InvalidArgument.of("question", "is required and must not be blank")
        if len(question) > limits.max_question_chars:
            raise InvalidArgument.of(
                "question",
                f"has {len(question)} characters; the limit is {limits.max_question_chars}",
            )
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
        if not 0 <= max_output_tokens <= limits.max_output_tokens_limit:
            raise InvalidArgument.of(
                "max_output_tokens",
                f"must be between 0 and {limits.max_output_tokens_limit}, got {max_output_tokens}",
            )

    async def answer(
        self,
        question: str,
        passages: Sequence[ContextPassage],
        max_output_tokens: int,
        temperature: float | None,
        timeout_s: float | None,
    ) -> Answer:
        self.validate(question, passages, max_output_tokens)
        settings = self._settings
        timeout = min(timeout_s, settings.request_timeout_s) if timeout_s else None
        try:
            completion = await self._client.chat.completions.create(
                model=settings.model,
                messages=build_messages(question, passages),  # type: ignore[arg-type]
                max_tokens=max_output_tokens or settings.default_max_output_tokens,
                temperature=settings.default_temperature if temperature is None else temperature,
                timeout=timeout or settings.request_timeout_s,
            )
        except openai.APIError as error:
            raise self._service_error(error) from error
        choice = completion.choices[0]
        text = choice.message.content or ""
        usage = completion.usage
        return Answer(
            text=text,
            cited=[passages[n - 1] for n in cited_passage_numbers(text, len(passages))],
            provider=settings.provider_name,
            model=completion.model or settings.model,
            input_tokens=usage.prompt_tokens if usage else 0,
            output_tokens=usage.completion_tokens if usage else 0,
            finish_reason=choice.finish_reason or "",
        )

    def _service_error(self, error: openai.APIError) -> ServiceError:
        provider = self._settings.provider_name
        if isinstance(error, openai.APITimeoutError):
            return DeadlineExceeded(f"LLM provider {provider} did not answer in time")
        if isinstance(error, openai.APIConnectionError):
            return Unavailable(
                f"LLM provider {provider} is unreachable at {self._settings.base_url}: {error}"
            )
        if isinstance(error, openai.RateLimitError):
            return ResourceExhausted(f"LLM provider {provider} is rate limiting: {error.message}")
        if isinstance(error, openai.BadRequestError):
            return InvalidArgument(f"LLM provider {provider} rejected the request: {error.message}")
        return Unavailable(f"LLM provider {provider} failed: {error}")

    async def close(self) -> None:
        await self._client.close()
