"""What happens around answering a question: rate limit, answer caches, spend budget.

``admit`` runs before the pipeline: it may refuse the query (rate limit, budget), answer it
from a cache, or let it through, with the small tier forced when the tenant is past its soft
budget. ``settle`` runs after the pipeline: it books the spend and stores the answer in the
caches. ``documents_changed`` invalidates a tenant's cached answers.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import structlog

from ragplane.query import metrics
from ragplane.query.caching.answers import CachedAnswer, exact_key, normalise, options_fingerprint
from ragplane.query.caching.exact import ExactCache
from ragplane.query.caching.index_versions import IndexVersions
from ragplane.query.caching.semantic_error import SemanticCacheError
from ragplane.query.config import GuardSettings, ResolvedPolicy
from ragplane.query.domain import (
    Answer,
    CacheOutcome,
    Cause,
    Degradation,
    Question,
    QuestionEmbedding,
)
from ragplane.query.limits import RateLimiter
from ragplane.query.spending import (
    SpendAction,
    SpendLedger,
    seconds_until_next_utc_day,
    spend_decision,
)
from ragplane.query.timings import Stage, elapsed_ms
from ragplane.runtime.audit import audit_note
from ragplane.runtime.errors import ResourceExhausted, ServiceError, Unavailable
from ragplane.runtime.redis_client import RedisDown, SharedRedis
from ragplane.runtime.resilience import Deadline

# The generation service's ModelTier value for its small tier.
SMALL_TIER = 1

if TYPE_CHECKING:  # weaviate-client, imported only where the semantic cache is built
    from ragplane.query.caching.semantic import SemanticCache

log = structlog.get_logger(__name__)

Embed = Callable[[Sequence[str], float], Awaitable[list[list[float]]]]


@dataclass
class Admission:
    """The outcome of admit: a cached answer, or the question to answer (tier maybe forced)."""

    question: Question
    cached: CachedAnswer | None = None
    cache: CacheOutcome = field(default_factory=CacheOutcome)
    degradations: list[Degradation] = field(default_factory=list)
    tier_reason: str = ""
    # Where a generated answer goes after a miss; unset when the caches were not consulted.
    fingerprint: str = ""
    # The tenant's index version when the caches were consulted (None: it had none yet).
    caches_consulted: bool = False
    index_version: int | None = None
    # Made by the semantic lookup; the pipeline reuses it (reported as its embedding stage).
    embedding: QuestionEmbedding | None = None
    # Time admit took besides that embedding (reported, with settle's, as the cache stage).
    guard_ms: float = 0.0


def _cache_degradation(reason: str, dependency: str = "Redis") -> Degradation:
    return Degradation(Stage.CACHE, Cause.UNAVAILABLE, reason, dependency)


@dataclass(eq=False)
class QueryGuard:
    settings: GuardSettings
    # None: no Redis, so no answer caches, rate limits or budgets.
    shared: SharedRedis | None
    semantic: SemanticCache | None
    embed: Embed

    def __post_init__(self) -> None:
        shared = self.shared
        self._index_versions = IndexVersions(shared) if shared else None
        self._exact = ExactCache(shared, self.settings.answer_cache_ttl_s) if shared else None
        self._limiter = RateLimiter(shared) if shared else None
        self._ledger = SpendLedger(shared) if shared else None

    # -- before the pipeline ----------------------------------------------------------------

    @property
    def consults_redis(self) -> bool:
        """Whether admit and settle talk to Redis (caches, limits, budgets) at all."""
        return self.shared is not None

    async def admit(self, question: Question, deadline: Deadline) -> Admission:
        started = time.perf_counter()
        policy = self.settings.policy_for(question.tenant)
        if question.flags.semantic_threshold is not None:
            policy = replace(policy, semantic_threshold=question.flags.semantic_threshold)
        admission = Admission(question)
        await self._check_rate(question.tenant, policy, admission)
        await self._look_up(admission, policy, deadline)
        if admission.cached is None:
            await self._check_spend(admission, policy)
        # The question's embedding is reported as the embedding stage, not here.
        embedding_ms = admission.embedding.duration_ms if admission.embedding else 0.0
        admission.guard_ms = elapsed_ms(started) - embedding_ms
        return admission

    def _redis_down(self, admission: Admission, what: str) -> None:
        """Limits per policy while Redis is down: say so, or refuse."""
        if self.settings.limits_when_redis_down == "closed":
            raise Unavailable(f"Redis is unavailable, and {what} fail closed: try again later")
        reason = f"Redis is unavailable: {what} not enforced"
        if all(d.reason != reason for d in admission.degradations):
            admission.degradations.append(_cache_degradation(reason))

    async def _check_rate(self, tenant: str, policy: ResolvedPolicy, admission: Admission) -> None:
        if policy.rate_per_s <= 0 or self._limiter is None:
            return
        try:
            decision = await self._limiter.take(tenant, policy.rate_per_s, policy.burst)
        except RedisDown:
            self._redis_down(admission, "rate limits")
            return
        if not decision.allowed:
            metrics.RATE_LIMITED.labels("rate").inc()
            raise ResourceExhausted(
                f"tenant {tenant!r} is over its rate limit of {policy.rate_per_s:g} queries/s "
                f"(burst {policy.burst}); retry in {decision.retry_after_s:.2f} s",
                retry_after_s=decision.retry_after_s,
            )

    async def _look_up(
        self, admission: Admission, policy: ResolvedPolicy, deadline: Deadline
    ) -> None:
        if not self.settings.answer_cache_enabled or self._index_versions is None:
            return
        question = admission.question
        semantic_on = policy.semantic_cache_enabled and self.semantic is not None
        if question.temperature is not None and question.temperature > 0:
            self._count("exact", "bypass")
            self._count("semantic", "bypass")
            return
        try:
            admission.index_version = await self._index_versions.current(question.tenant)
            admission.fingerprint = options_fingerprint(
                question, self.settings.answer_cache_version
            )
            admission.caches_consulted = True
            if admission.index_version is not None:
                await self._look_up_exact(admission, admission.index_version)
        except RedisDown as error:
            self._count("exact", "error")
            self._count("semantic", "error" if semantic_on else "bypass")
            admission.caches_consulted = False
            admission.degradations.append(
                _cache_degradation(f"answer caches off: {error}; the answer is not cached")
            )
            return
        if admission.index_version is None:
            # No version yet: nothing was ever cached for this tenant.
            self._count("exact", "miss")
        if admission.cached is not None:
            return
        if semantic_on:
            await self._look_up_semantic(admission, policy, deadline, admission.index_version)
        else:
            self._count("semantic", "bypass")

    async def _look_up_exact(self, admission: Admission, index_version: int) -> None:
        assert self._exact is not None
        cached = await self._exact.get(self._exact_key(admission, index_version))
        if cached is None:
            self._count("exact", "miss")
            return
        self._count("exact", "hit")
        self._serve(admission, cached, "exact", 1.0)

    @staticmethod
    def _exact_key(admission: Admission, index_version: int) -> str:
        question = admission.question
        return exact_key(
            question.tenant, normalise(question.text), admission.fingerprint, index_version
        )

    async def _look_up_semantic(
        self,
        admission: Admission,
        policy: ResolvedPolicy,
        deadline: Deadline,
        index_version: int | None,
    ) -> None:
        """Embed the question (the pipeline reuses the vector, and a fresh answer is stored
        under it) and look for a similar past question of the same index version."""
        assert self.semantic is not None
        question = admission.question
        try:
            started = time.perf_counter()
            [vector] = await self.embed([question.text], deadline.require("the semantic cache"))
            admission.embedding = QuestionEmbedding(vector, elapsed_ms(started))
            if index_version is None:
                self._count("semantic", "miss")
                return
            hit = await self.semantic.lookup(
                question.tenant,
                question.text,
                vector,
                admission.fingerprint,
                index_version,
                policy.semantic_threshold,
                question.flags.cache_ttl_s,
            )
        except ServiceError as error:
            # The embedding service failed: the pipeline meets it again and says so itself.
            self._count("semantic", "error")
            log.info("semantic cache skipped", error=error.message)
            return
        except SemanticCacheError as error:
            self._count("semantic", "error")
            admission.degradations.append(
                _cache_degradation(f"semantic cache off: {error}", "Weaviate")
            )
            return
        if hit is None:
            self._count("semantic", "miss")
            return
        self._count("semantic", "hit")
        self._serve(admission, hit.answer, "semantic", hit.similarity)

    @staticmethod
    def _serve(admission: Admission, cached: CachedAnswer, layer: str, similarity: float) -> None:
        admission.cached = cached
        admission.cache = CacheOutcome(
            hit=True,
            layer=layer,
            similarity=similarity,
            cached_question=cached.query,
            saved_usd=cached.cost_usd,
        )
        metrics.CACHE_SAVED_USD.inc(cached.cost_usd)
        audit_note(cost_usd=0.0, cache=layer, query=admission.question.text[:200])

    async def _check_spend(self, admission: Admission, policy: ResolvedPolicy) -> None:
        if self._ledger is None or (
            policy.daily_budget_usd is None and policy.daily_hard_budget_usd is None
        ):
            return
        tenant = admission.question.tenant
        try:
            spent = await self._ledger.spent_today(tenant)
        except RedisDown:
            self._redis_down(admission, "spend budgets")
            return
        decision = spend_decision(spent, policy.daily_budget_usd, policy.daily_hard_budget_usd)
        if decision.action is SpendAction.REFUSE:
            metrics.RATE_LIMITED.labels("budget").inc()
            raise ResourceExhausted(
                f"tenant {tenant!r}: {decision.reason}; it resets at 00:00 UTC",
                retry_after_s=seconds_until_next_utc_day(),
            )
        if decision.action is SpendAction.SMALL_TIER:
            admission.question = replace(admission.question, tier=SMALL_TIER)
            admission.tier_reason = decision.reason

    @staticmethod
    def _count(layer: str, outcome: str) -> None:
        metrics.CACHE_LOOKUPS.labels(layer, outcome).inc()

    # -- after the pipeline -----------------------------------------------------------------

    async def settle(self, admission: Admission, answer: Answer) -> None:
        """Book the spend and cache the answer; admit + settle are reported as the cache stage."""
        started = time.perf_counter()
        await self._book_and_store(admission, answer)
        if self.consults_redis:
            answer.timings.add_first(Stage.CACHE, admission.guard_ms + elapsed_ms(started))

    async def _book_and_store(self, admission: Admission, answer: Answer) -> None:
        tenant = admission.question.tenant
        audit_note(cost_usd=answer.cost_usd, cache="miss", query=admission.question.text[:200])
        if answer.cost_usd > 0 and self._ledger is not None:
            try:
                await self._ledger.add(tenant, answer.cost_usd)
            except RedisDown:
                log.warning("spend not booked: Redis is down", tenant=tenant)
        if not admission.caches_consulted or answer.degradations or not answer.provider:
            return  # caches not consulted, or an answer not worth keeping (degraded, no LLM)
        cached = CachedAnswer.of(
            admission.question.text,
            answer.text,
            answer.citations,
            answer.provider,
            answer.model,
            answer.cost_usd,
        )
        await self._store(admission, cached)

    async def _store(self, admission: Admission, answer: CachedAnswer) -> None:
        assert self._exact is not None
        assert self._index_versions is not None
        tenant = admission.question.tenant
        try:
            index_version = await self._index_versions.for_storing(tenant, admission.index_version)
            if index_version is None:
                return  # the documents changed while answering: the answer may be stale
            ttl_s = admission.question.flags.cache_ttl_s
            await self._exact.put(self._exact_key(admission, index_version), answer, ttl_s)
        except RedisDown:
            return
        if admission.embedding is None or self.semantic is None:
            return
        try:
            await self.semantic.store(
                tenant, admission.embedding.vector, admission.fingerprint, index_version, answer
            )
        except SemanticCacheError as error:
            log.warning("semantic cache store failed", error=str(error))

    # -- documents --------------------------------------------------------------------------

    async def documents_changed(self, tenant: str) -> None:
        """Invalidate the tenant's cached answers (after Ingest or DeleteDocuments)."""
        if self._index_versions is None:
            return
        index_version = await self._index_versions.bump(tenant)
        if index_version is None or self.semantic is None:
            return
        try:
            await self.semantic.forget_before(tenant, index_version)
        except SemanticCacheError as error:
            log.warning("old semantic cache entries not removed", error=str(error))

    async def close(self) -> None:
        if self.semantic is not None:
            await self.semantic.close()
        if self.shared is not None:
            await self.shared.close()
