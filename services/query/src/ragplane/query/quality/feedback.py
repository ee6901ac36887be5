"""Users' verdicts on answers, kept with the answer's identifiers in Redis.

Each answer is remembered by its request id for the feedback TTL (its tenant, the chunks it
cites, provider, model, tier, faithfulness and retrieval confidence); a verdict on it is
appended to its tenant's feedback list with those identifiers, so the feedback ratio and the
faithfulness of the answers users disliked can be read per tenant.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from enum import IntEnum

import structlog
from redis.asyncio import Redis

from ragplane.query.domain import Answer
from ragplane.query.metrics import FEEDBACK, FEEDBACK_FAITHFULNESS, tier_label
from ragplane.runtime.errors import NotFound
from ragplane.runtime.pii import mask_pii
from ragplane.runtime.redis_client import RedisDown, SharedRedis

log = structlog.get_logger(__name__)

# The newest verdicts kept per tenant: enough for weeks of ratios without an unbounded list.
KEPT_PER_TENANT = 10_000


class Rating(IntEnum):
    """The contract's Rating values."""

    UNSPECIFIED = 0
    UP = 1
    DOWN = 2


def answer_key(request_id: str) -> str:
    return f"ragplane:answer-record:{request_id}"


def feedback_key(tenant: str) -> str:
    return f"ragplane:feedback:{tenant}"


@dataclass(frozen=True)
class AnswerRecord:
    """What identifies an answer: enough to find its passages and judge it again later."""

    request_id: str
    tenant: str
    chunk_ids: list[str]
    provider: str
    model: str
    tier: str
    # None when the answer was not scored (cached, not found, scoring off).
    faithfulness: float | None
    retrieval_confidence: float | None

    @classmethod
    def of(cls, request_id: str, tenant: str, answer: Answer) -> AnswerRecord:
        scored = answer.faithfulness.scored
        return cls(
            request_id,
            tenant,
            [passage.chunk_id for passage in answer.citations],
            answer.provider,
            answer.model,
            tier_label(answer.tier),
            answer.faithfulness.score if scored else None,
            answer.confidence.value,
        )


@dataclass(frozen=True)
class Verdict:
    tenant: str
    request_id: str
    rating: Rating
    comment: str


@dataclass(frozen=True)
class FeedbackStore:
    redis: SharedRedis
    # How long an answer's identifiers are kept for a Feedback call about it.
    ttl_s: int

    async def remember(self, record: AnswerRecord) -> None:
        """Keep the answer's identifiers; a Redis failure costs the feedback, not the answer."""
        payload = json.dumps(asdict(record))
        try:
            await self.redis.run(
                lambda client: client.set(answer_key(record.request_id), payload, ex=self.ttl_s)
            )
        except RedisDown as error:
            log.warning("answer not kept for feedback", error=str(error))

    async def record(self, verdict: Verdict) -> str:
        """Store the verdict with its answer's identifiers; the comment as stored."""
        raw = await self.redis.run(lambda client: client.get(answer_key(verdict.request_id)))
        answer = AnswerRecord(**json.loads(raw)) if raw is not None else None
        if answer is None or answer.tenant != verdict.tenant:
            raise NotFound(
                f"no answer with request id {verdict.request_id!r} for tenant "
                f"{verdict.tenant!r} (answers are kept {self.ttl_s} s for feedback)"
            )
        comment = mask_pii(verdict.comment)
        entry = json.dumps(
            {
                "rating": verdict.rating.name.lower(),
                "comment": comment,
                "at": time.time(),
                "answer": asdict(answer),
            }
        )
        key = feedback_key(verdict.tenant)

        async def append(client: Redis) -> object:
            async with client.pipeline(transaction=True) as pipe:
                pipe.rpush(key, entry)
                pipe.ltrim(key, -KEPT_PER_TENANT, -1)
                return await pipe.execute()

        await self.redis.run(append)
        rating = verdict.rating.name.lower()
        FEEDBACK.labels(rating, answer.tier).inc()
        if answer.faithfulness is not None:
            FEEDBACK_FAITHFULNESS.labels(rating).observe(answer.faithfulness)
        return comment
