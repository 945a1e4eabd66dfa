"""The one concurrency limit per endpoint, for every batch caller (judging, answer generation):
an asyncio semaphore in this process and, with ``REDIS_URL``, a lease shared by every process."""

import asyncio
import contextlib
import hashlib
import random
import secrets
import time
from collections.abc import AsyncGenerator

from django.conf import settings

from arena.providers.endpoint import Endpoint, Timeouts

LEASE_MARGIN = 60.0  # seconds a Redis slot outlives the call's total timeout


class EndpointSlots:
    """At most ``limit`` calls in flight to one endpoint: an asyncio semaphore for this run,
    plus, with ``REDIS_URL``, a lease in a Redis sorted set shared by every process."""

    # Drop expired leases; take a slot if fewer than the limit are held. Atomic in Redis.
    _ACQUIRE = """
    redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1])
    if redis.call('ZCARD', KEYS[1]) < tonumber(ARGV[2]) then
        redis.call('ZADD', KEYS[1], ARGV[3], ARGV[4])
        redis.call('EXPIRE', KEYS[1], ARGV[5])
        return 1
    end
    return 0
    """

    def __init__(self, endpoint: Endpoint, limit: int):
        self.limit = limit
        self.local = asyncio.Semaphore(limit)
        identity = f"{endpoint.base_url.rstrip('/')}|{endpoint.model_id}".encode()
        self.key = "arena:endpoint-slots:" + hashlib.sha256(identity).hexdigest()[:24]
        self.lease = Timeouts.from_settings().total + LEASE_MARGIN
        self.redis = None
        if getattr(settings, "REDIS_URL", ""):
            import redis.asyncio

            self.redis = redis.asyncio.Redis.from_url(settings.REDIS_URL)

    @contextlib.asynccontextmanager
    async def hold(self) -> AsyncGenerator[None, None]:
        async with self.local:
            if self.redis is None:
                yield
                return
            token = secrets.token_hex(8)
            delay = 0.02
            while True:
                now = time.time()
                args: list[float | str] = [
                    now - self.lease,
                    self.limit,
                    now,
                    token,
                    int(self.lease) + 1,
                ]
                if await self.redis.eval(self._ACQUIRE, 1, self.key, *args):
                    break
                await asyncio.sleep(delay * random.uniform(0.5, 1.5))
                delay = min(delay * 2, 0.5)
            try:
                yield
            finally:
                await self.redis.zrem(self.key, token)

    async def aclose(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
