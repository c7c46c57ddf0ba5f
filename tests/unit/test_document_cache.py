"""The document cache holds at most its capacity, dropping the least recently used first."""

from __future__ import annotations

from uuid import uuid4

from service.queries.documents import Document, DocumentCache


def doc(size: int) -> Document:
    return Document(uuid4(), b"x" * size)


def test_least_recently_used_go_first_and_the_size_stays_bounded() -> None:
    cache = DocumentCache(capacity=100)
    first, second, third = doc(40), doc(40), doc(40)
    cache.put(("a",), first)
    cache.put(("b",), second)
    assert cache.get(("a",)) is first  # now the most recently used
    cache.put(("c",), third)
    assert cache.get(("b",)) is None
    assert cache.get(("a",)) is first and cache.get(("c",)) is third
    assert cache.size == 80


def test_replacing_a_key_counts_its_size_once_and_oversized_documents_are_not_held() -> None:
    cache = DocumentCache(capacity=100)
    cache.put(("a",), doc(60))
    newer = doc(30)
    cache.put(("a",), newer)
    assert cache.size == 30 and cache.get(("a",)) is newer
    cache.put(("a",), doc(101))
    assert cache.get(("a",)) is None and cache.size == 0
