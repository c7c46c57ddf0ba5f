"""Scheme adoption by agreement, pure: proposals, approvals, quorum, supersession."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain import scheme_history as h
from service.domain.errors import Conflict, DomainError, Forbidden, NotFound
from service.domain.events import DomainEvent
from service.domain.scheme import DEFAULT_SCHEME

NOW = datetime(2026, 11, 5, tzinfo=UTC)
SCHEME = DEFAULT_SCHEME.model_copy(update={"scheme_id": "s"})


def fold(state: h.SchemeVersions | None, events: list[DomainEvent]) -> h.SchemeVersions:
    for e in events:
        state = h.evolve(state, e)
    assert state is not None
    return state


def propose(state: h.SchemeVersions | None, approvers: list[str], quorum: int | None = None
            ) -> h.SchemeVersions:
    return fold(state, h.decide_propose(state, SCHEME, approvers=approvers, quorum=quorum,
                                        proposed_by="admin", now=NOW))


def approve(state: h.SchemeVersions, version: int, who: str) -> h.SchemeVersions:
    return fold(state, h.decide_approve(state, "s", version, approver_id=who, comment=None,
                                        now=NOW))


def test_a_proposal_is_in_force_once_the_quorum_approves() -> None:
    state = propose(None, ["m1", "a1", "a2"], quorum=2)
    assert state.latest is None and state.status(1) == "proposed"
    state = approve(state, 1, "a1")
    assert state.latest is None
    with pytest.raises(Conflict):
        approve(state, 1, "a1")
    with pytest.raises(Forbidden):
        approve(state, 1, "stranger")
    state = approve(state, 1, "m1")
    assert state.latest is not None and state.latest.version == 1
    assert state.status(1) == "adopted"
    with pytest.raises(Conflict):
        approve(state, 1, "a2")
    [item] = h.version_history(state)
    assert [a["approver_id"] for a in item["approvals"]] == ["a1", "m1"]
    assert item["adopted_at"] == NOW


def test_version_numbers_are_shared_and_older_proposals_are_superseded() -> None:
    state = fold(None, h.decide_publish(None, SCHEME, NOW))
    state = propose(state, ["x"])
    assert state.next_version == 3
    state = fold(state, h.decide_publish(state, SCHEME, NOW))
    assert state.latest is not None and state.latest.version == 3
    assert state.status(2) == "superseded"
    with pytest.raises(Conflict):
        approve(state, 2, "x")
    with pytest.raises(Conflict):
        approve(state, 3, "x")  # published directly: nothing to approve
    with pytest.raises(NotFound):
        approve(state, 7, "x")


@pytest.mark.parametrize(("approvers", "quorum", "field"), [
    ([], None, "approvers"),
    (["a", "b"], 3, "quorum"),
    (["a", "b"], 0, "quorum"),
    (["a b"], None, "approvers[0]"),
])
def test_bad_proposals(approvers: list[str], quorum: int | None, field: str) -> None:
    with pytest.raises(DomainError) as bad:
        propose(None, approvers, quorum)
    assert field in {e.field for e in bad.value.errors}


def test_an_invalid_scheme_cannot_be_proposed_either() -> None:
    broken = SCHEME.model_copy(update={"training_topics": ("yoga",)})
    with pytest.raises(DomainError) as bad:
        h.decide_propose(None, broken, approvers=["a"], quorum=None, proposed_by="x", now=NOW)
    assert "training_topics[0]" in {e.field for e in bad.value.errors}


def test_the_unanimous_default_quorum_and_duplicate_names() -> None:
    state = propose(None, ["a", "b", "a"])
    assert state.proposals[1].proposed.approvers == ("a", "b")
    assert state.proposals[1].proposed.quorum == 2
