"""Token buckets: a rate with a burst, overall or per key (a client address), in memory.

Per-key buckets are bounded: the least recently used key is forgotten first
(a forgotten key starts again with a full bucket, which only ever errs on the
side of letting a member in).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["KeyedBuckets", "TokenBucket"]


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up."""

    def __init__(
        self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """Starts full."""
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._tokens = burst
        self._at = clock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
        self._at = now

    def available(self) -> bool:
        """True when a token could be taken now (none is taken)."""
        self._refill()
        return self._tokens >= 1.0

    def take(self) -> bool:
        """Takes a token; False (and nothing taken) when the bucket is empty."""
        self._refill()
        if self._tokens < 1.0:
            return False
        self._tokens -= 1.0
        return True

    def retry_after(self) -> float:
        """Seconds until the next token."""
        self._refill()
        return max(0.0, (1.0 - self._tokens) / self.rate)


class KeyedBuckets:
    """One ``TokenBucket`` per key, at most ``max_keys`` of them."""

    def __init__(
        self,
        rate: float,
        burst: float,
        max_keys: int = 100_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """Buckets of ``rate`` per second and ``burst``."""
        self.rate = rate
        self.burst = burst
        self.max_keys = max_keys
        self._clock = clock
        self._buckets: OrderedDict[str, TokenBucket] = OrderedDict()

    def get(self, key: str) -> TokenBucket:
        """The key's bucket (a new, full one for a new key)."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = TokenBucket(self.rate, self.burst, self._clock)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        else:
            self._buckets.move_to_end(key)
        return bucket
