"""Decoded events shared by projections: an expensive decode is done once, cheap ones always."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from service.domain import directory as d
from service.domain.events import decode
from service.projections import decoded as memo
from service.store.event_store import RecordedEvent

NOW = datetime(2026, 11, 3, 9, 15, tzinfo=UTC)


def recorded(position: int) -> RecordedEvent:
    cmd = d.PutAgent(agent_id=f"a-{position}", name="Ana", team_id="t-1")
    (event,) = d.decide_put_agent(None, cmd, NOW)
    return RecordedEvent(position=position, tx_id=7, stream_id=d.agent_stream(f"a-{position}"),
                         version=1, event_id=uuid.uuid4(), type=event.type,
                         schema_version=event.schema_version, data=event.data(), metadata={},
                         recorded_at=NOW)


def test_an_expensive_event_is_decoded_once_and_equals_a_fresh_decode(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memo, "WORTH_HOLDING_SECONDS", 0.0)  # every decode counts as costly
    stored = recorded(1)
    first, again = memo.decoded(stored), memo.decoded(stored)
    assert again is first
    # Another read of the same stored event (a new object) finds it too.
    copy = RecordedEvent(**{**stored.__dict__})
    assert memo.decoded(copy) is first
    assert first == decode(stored.type, stored.schema_version, stored.data)


def test_cheap_events_are_not_held(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(memo, "WORTH_HOLDING_SECONDS", 3600.0)
    stored = recorded(3)
    first, again = memo.decoded(stored), memo.decoded(stored)
    assert again == first and again is not first


def test_a_written_event_is_held_only_when_decoding_it_would_be_expensive() -> None:
    cheap, costly = recorded(4), recorded(5)
    models = {}
    for stored, dump_seconds in ((cheap, 0.0001), (costly, 0.01)):
        models[stored.position] = decode(stored.type, stored.schema_version, stored.data)
        memo.remember(stored.event_id, stored.tx_id, stored.position, models[stored.position],
                      dump_seconds)
    assert memo.decoded(costly) is models[5]
    assert memo.decoded(cheap) is not models[4]
