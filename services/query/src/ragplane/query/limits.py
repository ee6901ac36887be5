"""Per-tenant token-bucket rate limits, shared by every replica through Redis.

The bucket lives in one Redis hash per tenant and is updated by a Lua script, so that
concurrent calls on several replicas cannot both take the last token.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from ragplane.runtime.redis_client import SharedRedis

# KEYS[1]: the bucket. ARGV: rate (tokens/s), burst (capacity), now (s), cost (tokens).
# Returns {allowed (1/0), seconds until enough tokens as a string}.
_TOKEN_BUCKET = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local cost = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or burst
local at = tonumber(state[2]) or now
tokens = math.min(burst, tokens + math.max(0, now - at) * rate)
local allowed = 0
local wait = 0
if tokens >= cost then
  tokens = tokens - cost
  allowed = 1
else
  wait = (cost - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('EXPIRE', KEYS[1], math.ceil(burst / rate) + 60)
return {allowed, tostring(wait)}
"""


def bucket_key(tenant: str) -> str:
    return f"ragplane:ratelimit:{tenant}"


@dataclass(frozen=True)
class RateDecision:
    allowed: bool
    retry_after_s: float


class RateLimiter:
    def __init__(self, shared: SharedRedis) -> None:
        self._shared = shared
        self._script = shared.client.register_script(_TOKEN_BUCKET)

    async def take(self, tenant: str, rate_per_s: float, burst: int) -> RateDecision:
        """Take one token from the tenant's bucket; raises RedisDown."""
        # Redis' clock would be the same for every replica, but TIME inside a script that
        # writes is not allowed on older Redis; replicas' clocks are kept in sync by NTP.
        now = time.time()
        allowed, wait = await self._shared.run(
            lambda _: self._script(keys=[bucket_key(tenant)], args=[rate_per_s, burst, now, 1])
        )
        return RateDecision(bool(int(allowed)), float(wait))
