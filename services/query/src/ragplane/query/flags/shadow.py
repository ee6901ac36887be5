"""Shadow generation: a share of the generation calls also sent to a shadow tier, prompt or
generation service, in the background, and each pair of answers recorded for comparison.

The caller never waits for the shadow: it starts once the caller's answer is generated and
runs as a task of its own, on its own channel, with its own timeout, and no breaker of the
caller's path counts its failures. It is dropped first under load: with
QUERY_SHADOW_MAX_IN_FLIGHT shadows running, a new one is not started (the pair is recorded as
"dropped"). Its cost is counted apart from the tenant's spend.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import structlog

from ragplane.query.backends import Backends
from ragplane.query.domain import Answer, Passage, Question
from ragplane.query.metrics import SHADOW_COST, SHADOW_PAIRS, SHADOW_SIMILARITY
from ragplane.query.timings import Stage, elapsed_ms
from ragplane.runtime.context import current_request_id
from ragplane.runtime.errors import DeadlineExceeded, ServiceError
from ragplane.runtime.pii import mask_pii_processor

log = structlog.get_logger(__name__)
record_log = structlog.get_logger("ragplane.shadow")

Embed = Callable[[Sequence[str], float], Awaitable[list[list[float]]]]
# The embedding call that measures the two answers' similarity.
SIMILARITY_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class _Pair:
    """What is known of the caller's side when its shadow starts."""

    request_id: str
    question: Question
    primary: dict[str, Any]
    text: str


@dataclass(frozen=True)
class ShadowRecords:
    """The JSON-lines record of each pair: in a file, or (no file) on the ragplane.shadow log."""

    path: Path | None

    def write(self, record: dict[str, Any]) -> None:
        # The same masking as the audit log's (its logging pipeline runs this processor).
        masked = dict(mask_pii_processor(None, "", record))
        if self.path is None:
            record_log.info("shadow pair", **masked)
            return
        # One short line, appended whole: the file stays valid JSON lines after a crash.
        with self.path.open("a", encoding="utf-8") as out:
            out.write(json.dumps(masked, ensure_ascii=False) + "\n")


@dataclass(eq=False)
class ShadowRunner:
    backends: Backends
    embed: Embed
    records: ShadowRecords
    max_in_flight: int
    timeout_s: float
    _running: set[asyncio.Task[None]] = field(init=False, default_factory=set)

    def offer(self, question: Question, passages: Sequence[Passage], answer: Answer) -> bool:
        """Start the question's shadow if its flags draw one; True when one was started."""
        plan = question.flags.shadow
        if plan is None or random.random() >= plan.share:
            return False
        generation_ms = sum(ms for stage, ms in answer.timings if stage is Stage.GENERATION)
        primary = {**_side(answer, question.prompt_version), "latency_ms": round(generation_ms, 1)}
        pair = _Pair(current_request_id.get(), question, primary, answer.text)
        if len(self._running) >= self.max_in_flight:
            self._finish(pair, "dropped", None, None)
            return False
        shadow_question = replace(
            question,
            tier=plan.tier or question.tier,
            prompt_version=plan.prompt_version or question.prompt_version,
        )
        task = asyncio.create_task(self._run(pair, shadow_question, list(passages)))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return True

    async def _run(self, pair: _Pair, question: Question, passages: list[Passage]) -> None:
        started = time.perf_counter()
        try:
            generated = await self.backends.generate(question, passages, self.timeout_s)
        except DeadlineExceeded as error:
            self._finish(pair, "timed_out", {"error": error.message}, None)
            return
        except ServiceError as error:
            self._finish(pair, "failed", {"error": error.message}, None)
            return
        latency_ms = round(elapsed_ms(started), 1)
        SHADOW_COST.inc(generated.cost_usd)
        answer = Answer()
        answer.take_generated(generated, passages)
        shadow = {**_side(answer, question.prompt_version), "latency_ms": latency_ms}
        similarity = await self._similarity(pair.text, generated.text)
        if similarity is not None:
            SHADOW_SIMILARITY.observe(similarity)
        self._finish(pair, "compared", shadow, similarity)

    async def _similarity(self, first: str, second: str) -> float | None:
        """Cosine similarity of the two answers' embeddings; None when they cannot be had."""
        if not first.strip() or not second.strip():
            return None
        try:
            a, b = await self.embed([first, second], SIMILARITY_TIMEOUT_S)
        except ServiceError as error:
            log.info("shadow similarity not measured", error=error.message)
            return None
        norms = math.hypot(*a) * math.hypot(*b)
        return round(sum(x * y for x, y in zip(a, b, strict=True)) / norms, 4) if norms else None

    def _finish(
        self,
        pair: _Pair,
        outcome: str,
        shadow: dict[str, Any] | None,
        similarity: float | None,
    ) -> None:
        served = pair.question.flags.served
        SHADOW_PAIRS.labels(outcome, served.variant).inc()
        self.records.write(
            {
                "time": round(time.time(), 3),
                "request_id": pair.request_id,
                "tenant": pair.question.tenant,
                "flag_set": served.flag_set,
                "flags_version": served.version,
                "experiment": served.experiment,
                "variant": served.variant,
                "question": pair.question.text,
                "outcome": outcome,
                "similarity": similarity,
                "primary": pair.primary,
                "shadow": shadow,
            }
        )

    async def close(self) -> None:
        """Cancel the shadows still running: they must not hold up a shutdown."""
        for task in list(self._running):
            task.cancel()
        await asyncio.gather(*self._running, return_exceptions=True)
        await self.backends.close()


def _side(answer: Answer, prompt_version: int) -> dict[str, Any]:
    return {
        "text": answer.text,
        "chars": len(answer.text),
        "provider": answer.provider,
        "model": answer.model,
        "tier": answer.tier,
        "prompt_version": prompt_version,
        "input_tokens": answer.input_tokens,
        "output_tokens": answer.output_tokens,
        "cost_usd": answer.cost_usd,
        "extractive": answer.extractive,
    }
