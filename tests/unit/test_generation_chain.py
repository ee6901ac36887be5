"""The fallback chain's decisions, with scripted provider replies instead of servers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ragplane.generation.config import GenerationSettings, ProviderSettings
from ragplane.generation.generator import AnswerRequest, Generator
from ragplane.generation.prompt import ContextPassage
from ragplane.generation.providers import Completion, ProviderFailure

PASSAGES = [ContextPassage("a.md", "a.md#0", "Venv creates environments. More text.", 1.0)]


def _settings(**overrides: object) -> GenerationSettings:
    providers = [
        ProviderSettings(
            name=name,
            base_url="http://127.0.0.1:9/v1",
            model="m",
            input_price_per_mtok_usd=1.0,
            output_price_per_mtok_usd=2.0,
        )
        for name in ("primary", "secondary")
    ]
    values: dict[str, object] = {
        "providers": providers,
        "retry_max_attempts": 3,
        "retry_base_delay_s": 0.1,
        "breaker_fail_max": 10,
        **overrides,
    }
    return GenerationSettings.model_validate(values)


class Script:
    """Replies per provider, in order: a Completion or a ProviderFailure to raise."""

    def __init__(self, generator: Generator, replies: dict[str, list[Completion | Exception]]):
        self.calls: list[str] = []
        self._replies: dict[str, Iterator[Completion | Exception]] = {
            name: iter(items) for name, items in replies.items()
        }
        for provider in generator._providers:
            provider.complete = self._for(provider.name)  # type: ignore[method-assign]

    def _for(self, name: str):  # type: ignore[no-untyped-def]
        async def complete(*args: object) -> Completion:
            self.calls.append(name)
            reply = next(self._replies[name])
            if isinstance(reply, Exception):
                raise reply
            return reply

        return complete


def _ok(text: str = "Use venv [1].") -> Completion:
    return Completion(text, "m", "stop", input_tokens=None, output_tokens=5)


def _fail(status: int, retry_after_s: float | None = None) -> ProviderFailure:
    retryable = status == 429 or status >= 500
    return ProviderFailure(
        "x", f"HTTP {status}", retryable, http_status=status, retry_after_s=retry_after_s
    )


@pytest.fixture
def sleeps() -> list[float]:
    return []


def _generator(sleeps: list[float], **overrides: object) -> Generator:
    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    return Generator(_settings(**overrides), sleep=sleep)


async def test_retryable_failures_are_retried_then_answered(sleeps: list[float]) -> None:
    generator = _generator(sleeps)
    script = Script(generator, {"primary": [_fail(503), _fail(502), _ok()]})
    answer = await generator.answer(AnswerRequest("What is venv?", PASSAGES, 8, timeout_s=30))
    assert script.calls == ["primary"] * 3
    assert len(sleeps) == 2
    assert answer.provider == "primary"
    assert answer.attempts[0].outcome == "succeeded"
    assert answer.attempts[0].calls == 3
    assert [p.chunk_id for p in answer.cited] == ["a.md#0"]
    # No usage for input: estimated locally; cost from the price table.
    assert answer.input_tokens > 0
    assert answer.cost_usd == pytest.approx((answer.input_tokens * 1.0 + 5 * 2.0) / 1e6)


async def test_non_retryable_failure_goes_to_the_next_provider_at_once(
    sleeps: list[float],
) -> None:
    generator = _generator(sleeps)
    script = Script(generator, {"primary": [_fail(401)], "secondary": [_ok()]})
    answer = await generator.answer(AnswerRequest("What is venv?", PASSAGES, 8, timeout_s=30))
    assert script.calls == ["primary", "secondary"]
    assert sleeps == []
    assert answer.provider == "secondary"
    assert (answer.attempts[0].outcome, answer.attempts[0].http_status) == ("failed", 401)


async def test_retry_after_beyond_the_deadline_skips_to_the_next_provider(
    sleeps: list[float],
) -> None:
    generator = _generator(sleeps)
    script = Script(generator, {"primary": [_fail(429, 60.0)], "secondary": [_ok()]})
    answer = await generator.answer(AnswerRequest("What is venv?", PASSAGES, 8, timeout_s=5))
    assert script.calls == ["primary", "secondary"]
    assert sleeps == []
    assert "miss the deadline" in answer.attempts[0].reason


async def test_retry_after_within_the_deadline_is_waited_out(sleeps: list[float]) -> None:
    generator = _generator(sleeps)
    Script(generator, {"primary": [_fail(429, 2.0), _ok()]})
    answer = await generator.answer(AnswerRequest("What is venv?", PASSAGES, 8, timeout_s=30))
    assert sleeps == [2.0]
    assert answer.provider == "primary"


async def test_every_provider_failing_gives_a_degraded_extractive_answer(
    sleeps: list[float],
) -> None:
    generator = _generator(sleeps, retry_max_attempts=1)
    Script(generator, {"primary": [_fail(500)], "secondary": [_fail(401)]})
    answer = await generator.answer(AnswerRequest("What is venv?", PASSAGES, 8, timeout_s=30))
    assert answer.degraded_reason is not None
    assert "primary" in answer.degraded_reason
    assert "secondary" in answer.degraded_reason
    assert answer.text == "Venv creates environments. [1]"
    assert answer.cited == PASSAGES


async def test_no_time_left_skips_every_provider(sleeps: list[float]) -> None:
    generator = _generator(sleeps)
    script = Script(generator, {})
    answer = await generator.answer(AnswerRequest("What is venv?", PASSAGES, 8, timeout_s=0.1))
    assert script.calls == []
    assert [a.outcome for a in answer.attempts] == ["skipped", "skipped"]
    assert answer.degraded_reason is not None


async def test_open_breaker_skips_its_provider(sleeps: list[float]) -> None:
    generator = _generator(sleeps, breaker_fail_max=1, retry_max_attempts=3)
    script = Script(generator, {"primary": [_fail(503)], "secondary": [_ok(), _ok()]})
    first = await generator.answer(AnswerRequest("What is venv?", PASSAGES, 8, timeout_s=30))
    assert "circuit breaker opened" in first.attempts[0].reason
    second = await generator.answer(AnswerRequest("What is venv?", PASSAGES, 8, timeout_s=30))
    assert script.calls == ["primary", "secondary", "secondary"]
    assert (second.attempts[0].outcome, second.attempts[0].reason) == (
        "skipped",
        "circuit breaker open",
    )


async def test_forced_tier_orders_the_chain(sleeps: list[float]) -> None:
    generator = _generator(sleeps)
    generator._providers[1].settings = generator._providers[1].settings.model_copy(
        update={"tier": "large"}
    )
    script = Script(generator, {"secondary": [_ok()]})
    answer = await generator.answer(
        AnswerRequest("What is venv?", PASSAGES, 8, timeout_s=30, tier="large")
    )
    assert script.calls == ["secondary"]
    assert (answer.tier, answer.tier_reason) == ("large", "forced by the request")
