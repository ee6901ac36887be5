"""One OpenAI-compatible provider: a client, and failures classified for retry and fallback."""

from __future__ import annotations

import asyncio
import email.utils
import os
import time
from dataclasses import dataclass
from typing import TypedDict, cast

import httpx
import openai
import structlog
from openai.types.chat import ChatCompletionChunk, ChatCompletionMessageParam

from ragplane.generation.config import ProviderSettings
from ragplane.generation.pricing import TokenCount, estimate_tokens, tokenizer_count

log = structlog.get_logger(__name__)

# HTTP statuses worth another call to the same provider; everything else 4xx is the request's
# or the configuration's fault and would fail again.
_RETRYABLE_STATUSES = frozenset({408, 409, 425, 429})


class _ChatRequest(TypedDict):
    """The arguments of a chat completion, streamed or not."""

    model: str
    messages: list[ChatCompletionMessageParam]
    max_tokens: int
    temperature: float
    timeout: float


@dataclass(eq=False)
class ProviderFailure(Exception):
    """A failed call to a provider, with what the fallback chain needs to decide what next."""

    provider: str
    reason: str
    retryable: bool
    http_status: int = 0
    retry_after_s: float | None = None
    context_overflow: bool = False

    def __str__(self) -> str:
        return f"{self.provider}: {self.reason}"

    @property
    def provider_unhealthy(self) -> bool:
        """Whether this failure says something about the provider (counts for its breaker).

        A 400 is about this one request (for example a prompt too long), so it must not open
        the breaker for everyone else; 401/403/404 mean a broken configuration that fails
        every call, so skipping the provider quickly is right.
        """
        return self.retryable or self.http_status in (401, 403, 404)


@dataclass(frozen=True)
class Completion:
    text: str
    model: str
    finish_reason: str
    # None when the provider sent no usage.
    input_tokens: int | None
    output_tokens: int | None


def parse_retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds from a Retry-After header: delta-seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _retry_after(error: openai.APIStatusError) -> float | None:
    headers = error.response.headers
    millis = headers.get("retry-after-ms")
    if millis:
        try:
            return max(0.0, float(millis) / 1000)
        except ValueError:
            pass
    return parse_retry_after(headers.get("retry-after"))


def _is_context_overflow(error: openai.APIStatusError) -> bool:
    text = str(error.message).lower()
    return any(cue in text for cue in ("context length", "context_length", "context window"))


def _status_words(status: int, context_overflow: bool) -> str:
    """What an HTTP status from a provider means, in ragplane's words."""
    if context_overflow:
        return "the prompt did not fit the model's context window"
    if status == 429:
        return "rate limited"
    if status in (401, 403):
        return "the API key was refused"
    if status == 404:
        return "the model or endpoint was not found"
    if status >= 500:
        return "server error"
    return "the request was refused"


def classify(provider: str, error: openai.APIError) -> ProviderFailure:
    """The failure in ragplane's own words; the provider's raw text goes to the log only."""
    log.warning("llm provider error", provider=provider, error=str(error)[:1000])
    if isinstance(error, openai.APITimeoutError):
        return ProviderFailure(provider, "timed out", retryable=True)
    if isinstance(error, openai.APIConnectionError):
        return ProviderFailure(provider, "unreachable (the connection failed)", True)
    if isinstance(error, openai.APIStatusError):
        status = error.status_code
        retryable = status in _RETRYABLE_STATUSES or status >= 500
        overflow = status == 400 and _is_context_overflow(error)
        return ProviderFailure(
            provider,
            f"HTTP {status}: {_status_words(status, overflow)}",
            retryable=retryable,
            http_status=status,
            retry_after_s=_retry_after(error) if retryable else None,
            context_overflow=overflow,
        )
    return ProviderFailure(provider, f"failed ({type(error).__name__})", retryable=True)


def _api_key(settings: ProviderSettings, default_api_key: str) -> str:
    """The key from the named environment variable or mounted secret file, else the default.

    Errors name the variable or the file, never a value.
    """
    if settings.api_key_env:
        api_key = os.environ.get(settings.api_key_env, "")
        if not api_key:
            raise ValueError(
                f"provider {settings.name}: environment variable {settings.api_key_env} is not set"
            )
        return api_key
    if settings.api_key_file:
        # A Kubernetes secret mounted as a file ends with a newline more often than not.
        api_key = settings.api_key_file.read_text().strip()
        if not api_key:
            raise ValueError(f"provider {settings.name}: {settings.api_key_file} is empty")
        return api_key
    return default_api_key


class Provider:
    """A configured provider and its client; the client never retries on its own."""

    def __init__(self, settings: ProviderSettings, default_api_key: str) -> None:
        self.settings = settings
        self.count_tokens: TokenCount = (
            tokenizer_count(settings.tokenizer_path) if settings.tokenizer_path else estimate_tokens
        )
        self._client = openai.AsyncOpenAI(
            base_url=settings.base_url,
            api_key=_api_key(settings, default_api_key),
            timeout=settings.request_timeout_s,
            # Retries and fallback are decided per request by the caller's deadline, not here.
            max_retries=0,
        )

    @property
    def name(self) -> str:
        return self.settings.name

    def _request(
        self,
        messages: list[dict[str, str]],
        max_output_tokens: int,
        temperature: float,
        timeout_s: float,
    ) -> _ChatRequest:
        return _ChatRequest(
            model=self.settings.model,
            messages=cast("list[ChatCompletionMessageParam]", messages),
            max_tokens=max_output_tokens,
            temperature=temperature,
            timeout=timeout_s,
        )

    async def complete(
        self,
        messages: list[dict[str, str]],
        max_output_tokens: int,
        temperature: float,
        timeout_s: float,
    ) -> Completion:
        request = self._request(messages, max_output_tokens, temperature, timeout_s)
        try:
            completion = await self._client.chat.completions.create(**request, stream=False)
        except openai.APIError as error:
            raise classify(self.name, error) from error
        if not completion.choices:
            raise ProviderFailure(self.name, "returned no choices", retryable=True, http_status=200)
        choice = completion.choices[0]
        usage = completion.usage
        return Completion(
            text=choice.message.content or "",
            model=completion.model or self.settings.model,
            finish_reason=choice.finish_reason or "",
            input_tokens=usage.prompt_tokens if usage else None,
            output_tokens=usage.completion_tokens if usage else None,
        )

    async def open_stream(
        self,
        messages: list[dict[str, str]],
        max_output_tokens: int,
        temperature: float,
        timeout_s: float,
        idle_timeout_s: float,
    ) -> tuple[TextStream, str]:
        """Start a streamed completion and wait for its first text (or its end).

        Everything up to the first text counts as the call: a failure here may still go to
        another provider; after it, the caller is committed to this provider's stream.
        """
        request = self._request(messages, max_output_tokens, temperature, timeout_s)
        try:
            stream = await self._client.chat.completions.create(**request, stream=True)
        except openai.APIError as error:
            raise classify(self.name, error) from error
        text_stream = TextStream(self.name, stream, idle_timeout_s)
        try:
            first = await asyncio.wait_for(text_stream.next_text(), timeout_s)
        except TimeoutError:
            await text_stream.close()
            raise ProviderFailure(self.name, "no first token in time", retryable=True) from None
        except BaseException:
            await text_stream.close()
            raise
        return text_stream, first or ""

    async def close(self) -> None:
        await self._client.close()


class TextStream:
    """The text of a streamed completion, with its usage when the server sends one."""

    def __init__(
        self,
        provider: str,
        stream: openai.AsyncStream[ChatCompletionChunk],
        idle_timeout_s: float,
    ) -> None:
        self._provider = provider
        self._stream = stream
        self._chunks = stream.__aiter__()
        self._idle_timeout_s = idle_timeout_s
        self.model = ""
        self.finish_reason = ""
        self.input_tokens: int | None = None
        self.output_tokens: int | None = None

    async def next_text(self) -> str | None:
        """The next non-empty piece of text; None once the stream has ended well."""
        while True:
            try:
                chunk = await asyncio.wait_for(anext(self._chunks), self._idle_timeout_s)
            except StopAsyncIteration:
                return None
            except TimeoutError:
                raise ProviderFailure(
                    self._provider,
                    f"stream stalled: nothing for {self._idle_timeout_s:g}s",
                    retryable=True,
                ) from None
            except openai.APITimeoutError as error:
                raise ProviderFailure(self._provider, "stream timed out", True) from error
            except (openai.APIConnectionError, httpx.HTTPError) as error:
                # A connection lost while reading the body: the stream was cut, the server
                # may well be reachable. (Some SDK versions leave httpx errors unwrapped.)
                log.warning("llm stream cut", provider=self._provider, error=str(error)[:1000])
                raise ProviderFailure(
                    self._provider, "stream cut (the connection was lost)", retryable=True
                ) from error
            except openai.APIError as error:
                raise classify(self._provider, error) from error
            except (ValueError, AttributeError, KeyError) as error:
                # A chunk that is not the JSON the API promises.
                log.warning("llm stream chunk malformed", provider=self._provider, error=str(error))
                raise ProviderFailure(
                    self._provider, "malformed stream chunk", retryable=True
                ) from error
            self.model = chunk.model or self.model
            if chunk.usage is not None:
                self.input_tokens = chunk.usage.prompt_tokens
                self.output_tokens = chunk.usage.completion_tokens
            if chunk.choices:
                choice = chunk.choices[0]
                if choice.finish_reason:
                    self.finish_reason = choice.finish_reason
                if choice.delta is not None and choice.delta.content:
                    return choice.delta.content

    async def close(self) -> None:
        """Stop the upstream request (a cancelled caller must not keep the server busy)."""
        await self._stream.close()
