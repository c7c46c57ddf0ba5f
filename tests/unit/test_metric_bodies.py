"""POST /v1/metrics JSON bodies: the msgspec fast path reads exactly what the adapter reads."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from service.api import metric_bodies as bodies
from service.api.problems import Problem
from service.domain import metrics as m

GOOD = {"id": "conv-1:r0", "agent_id": "a-17", "metric": "response_time_seconds",
        "value": 12.4, "occurred_at": "2026-11-03T09:15:02.5+09:00"}


Outcome = tuple[str, m.Samples] | tuple[int, str]


def _adapter(body: bytes) -> Outcome:
    """What the pydantic adapter alone makes of a body: the batch, or the problem."""
    try:
        batch = bodies.BATCH.validate_json(body)
    except ValidationError as exc:
        problem = bodies.validation_problem(exc)
        return problem.status, problem.detail
    return batch["source"], m.Samples.of(batch["samples"])


def _parsed(body: bytes) -> Outcome:
    try:
        return bodies.parse_json(body)
    except Problem as problem:
        return problem.status, problem.detail


def _batch(*samples: dict[str, Any], source: str = "chat-1") -> bytes:
    return orjson.dumps({"source": source, "samples": list(samples)})


def test_a_common_batch_takes_the_fast_path_with_the_adapters_values() -> None:
    body = _batch(GOOD, {**GOOD, "id": "conv-2", "value": 3, "occurred_at":
                         "2026-11-03T00:15:02Z"})
    fast = bodies._decoded(body)
    assert fast is not None
    assert fast == _adapter(body)
    source, samples = fast
    assert source == "chat-1" and samples.values == [12.4, 3.0]
    assert samples[1]["occurred_at"].utcoffset() is not None


@pytest.mark.parametrize("change", [
    {"occurred_at": "2026-11-03T09:15:02.1234567+09:00"},  # msgspec would round the 7th digit
    {"occurred_at": "2026-11-03T09:15Z"},  # no seconds: the adapter accepts it
    {"occurred_at": "2026-11-03T09:15:02,5Z"},  # a decimal comma: the adapter accepts it
    {"occurred_at": "2026-11-03T09:15:02"},  # no offset
    {"occurred_at": "2026-02-30T09:15:02Z"},
    {"occurred_at": 1_700_000_000},
    {"value": True}, {"value": "1"}, {"value": None}, {"value": -0.0}, {"value": 2**60},
    {"id": ""}, {"id": "x" * 128}, {"id": "x" * 129}, {"id": "tab\there"}, {"id": "é ü 中"},
    {"id": "line\n"}, {"id": 7},
    {"agent_id": "a 17"}, {"agent_id": "a-17\n"}, {"agent_id": "a" * 65},
    {"metric": ""}, {"metric": "m" * 65}, {"metric": "del\x7f"},
    {"extra": 1},
])
def test_every_body_reads_as_the_adapter_reads_it(change: dict[str, Any]) -> None:
    body = _batch({**GOOD, **change})
    assert _parsed(body) == _adapter(body)


@pytest.mark.parametrize("body", [
    b'{"source":"s","samples":[{"id":"a","agent_id":"a-1","metric":"m","value":Infinity,'
    b'"occurred_at":"2026-12-02T08:09:58Z"}]}',
    b'{"source":"s","samples":[]}', b'{"source":"s"}', b'{"source":"bad source","samples":[]}',
    b'{"source":"s","samples":[],"more":1}', b'[]', b'', b'{"source":"s","samples":[]} x',
])
def test_odd_documents_read_as_the_adapter_reads_them(body: bytes) -> None:
    assert _parsed(body) == _adapter(body)


def test_an_oversized_batch_is_a_413() -> None:
    body = _batch(*({**GOOD, "id": f"c-{i}"} for i in range(m.MAX_BATCH + 1)))
    assert _parsed(body)[0] == 413


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=140), st.text(max_size=70), st.text(max_size=70))
def test_any_text_in_the_string_fields_reads_as_the_adapter_reads_it(
        sample_id: str, agent_id: str, metric: str) -> None:
    body = _batch({**GOOD, "id": sample_id, "agent_id": agent_id, "metric": metric})
    assert _parsed(body) == _adapter(body)
