"""The LRU holds at most its capacity by weight, dropping the least recently used first."""

from __future__ import annotations

from service.caching import LRU


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
