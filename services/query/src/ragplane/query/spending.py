"""Daily LLM spend per tenant (UTC days), kept in Redis, and what a budget does about it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from ragplane.runtime.redis_client import SharedRedis

_KEPT_S = 3 * 24 * 3600


def spend_key(tenant: str, day: str) -> str:
    return f"ragplane:spend:{tenant}:{day}"


def _today() -> str:
    return datetime.now(UTC).strftime("%Y%m%d")


def seconds_until_next_utc_day() -> float:
    now = datetime.now(UTC)
    tomorrow = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1.0, (tomorrow - now).total_seconds())


class SpendLedger:
    def __init__(self, shared: SharedRedis) -> None:
        self._shared = shared

    async def spent_today(self, tenant: str) -> float:
        value = await self._shared.run(lambda client: client.get(spend_key(tenant, _today())))
        return float(value or 0.0)

    async def add(self, tenant: str, cost_usd: float) -> None:
        key = spend_key(tenant, _today())

        async def record(client: object) -> None:
            async with self._shared.client.pipeline(transaction=True) as pipe:
                pipe.incrbyfloat(key, cost_usd)
                pipe.expire(key, _KEPT_S)
                await pipe.execute()

        await self._shared.run(record)


class SpendAction(Enum):
    NONE = "none"
    SMALL_TIER = "small tier"
    REFUSE = "refuse"


@dataclass(frozen=True)
class SpendDecision:
    action: SpendAction
    reason: str


def spend_decision(spent: float, soft_usd: float | None, hard_usd: float | None) -> SpendDecision:
    """Past the hard budget: refuse; past the soft one: the small tier; else nothing."""
    if hard_usd is not None and spent >= hard_usd:
        return SpendDecision(
            SpendAction.REFUSE,
            f"the tenant's daily LLM spend budget of ${hard_usd:g} is used up "
            f"(${spent:.6f} spent today, UTC)",
        )
    if soft_usd is not None and spent >= soft_usd:
        return SpendDecision(
            SpendAction.SMALL_TIER,
            f"the tenant spent ${spent:.6f} today, past its ${soft_usd:g} budget: "
            "small tier forced",
        )
    return SpendDecision(SpendAction.NONE, "")
