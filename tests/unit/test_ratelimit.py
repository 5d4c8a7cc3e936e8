"""Token buckets: the rate, the burst, per-key buckets and their bound."""

from __future__ import annotations

from bot.channels.ratelimit import KeyedBuckets, TokenBucket


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_bucket_allows_its_burst_then_its_rate():
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    assert abs(bucket.retry_after() - 0.5) < 1e-9
    clock.now += 0.5
    assert bucket.available() and bucket.take() and not bucket.take()
    clock.now += 3600  # refills up to the burst, not beyond
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]


def test_keyed_buckets_are_separate_and_bounded():
    clock = Clock()
    buckets = KeyedBuckets(rate=1 / 3600, burst=2, max_keys=2, clock=clock)
    assert buckets.get("1.2.3.4").take() and buckets.get("1.2.3.4").take()
    assert not buckets.get("1.2.3.4").take()
    assert buckets.get("5.6.7.8").take()  # another address has its own bucket
    buckets.get("9.9.9.9")  # a third key: the least recently used one is forgotten
    assert buckets.get("1.2.3.4").take()
