"""The process caches: the LRU bounded by weight, and Shared, dropped by announcements."""

from __future__ import annotations

from service.caching import LRU, Shared


def sized() -> LRU[str, bytes]:
    return LRU(100, len)


def test_least_recently_used_go_first_and_the_weight_stays_bounded() -> None:
    cache = sized()
    cache.put("a", b"a" * 40)
    cache.put("b", b"b" * 40)
    assert cache.get("a") == b"a" * 40  # now the most recently used
    cache.put("c", b"c" * 40)
    assert cache.get("b") is None
    assert cache.get("a") == b"a" * 40 and cache.get("c") == b"c" * 40
    assert cache.total == 80


def test_replacing_a_key_counts_its_weight_once_and_overweight_values_are_not_held() -> None:
    cache = sized()
    cache.put("a", b"x" * 60)
    cache.put("a", b"y" * 30)
    assert cache.total == 30 and cache.get("a") == b"y" * 30
    cache.put("a", b"z" * 101)
    assert cache.get("a") is None and cache.total == 0
    cache.put("b", b"b")
    cache.discard("b")
    assert cache.get("b") is None and cache.total == 0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def shared(clock: Clock) -> Shared[str, bytes]:
    return Shared("docs", 100, ttl=300.0, fallback_ttl=1.0, weight=len, timer=clock)


def test_a_value_read_before_a_drop_is_not_held_after_it() -> None:
    cache = shared(Clock())
    cache.listening = True
    stamp = cache.stamp()
    cache.clear()  # a change was announced while the value was being read
    cache.put("a", b"old", stamp)
    assert cache.get("a") is None
    cache.put("a", b"new", cache.stamp())
    assert cache.get("a") == b"new"


def test_held_values_live_their_ttl_listening_and_the_short_one_otherwise() -> None:
    clock = Clock()
    cache = shared(clock)
    cache.listening = True
    cache.put("a", b"a", cache.stamp())
    clock.now = 299.0
    assert cache.get("a") == b"a"
    cache.listening = False  # changes may be missed from now on
    assert cache.get("a") is None
    cache.put("b", b"b", cache.stamp())
    clock.now = 299.9
    assert cache.get("b") == b"b"
    clock.now = 300.5
    assert cache.get("b") is None
    cache.listening = True
    clock.now = 301.0
    assert cache.get("a") is None  # past its ttl


def test_shared_holds_at_most_its_weight() -> None:
    cache = shared(Clock())
    cache.put("big", b"x" * 101, cache.stamp())
    assert cache.get("big") is None and len(cache) == 0
    for name in "abc":
        cache.put(name, b"y" * 40, cache.stamp())
    assert len(cache) == 2
