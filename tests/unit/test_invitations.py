"""Invited raters, pure: who may be invited, who may rate, and how their ratings count."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain import cycle as c
from service.domain import invitations as inv
from service.domain.errors import Conflict, DomainError, Forbidden
from service.domain.scheme import DEFAULT_SCHEME, Criterion, RaterRole, Scheme
from service.domain.scoring import score_agent

NOW = datetime(2026, 11, 5, tzinfo=UTC)
MEMBERS = {"a", "b", "c"}


def opened() -> c.Cycle:
    state = c.evolve(None, c.CycleOpened(
        team_id="t", period="2026-11", scheme_id="online-shop-cs", scheme_version=1,
        deadline=NOW, opened_at=NOW))
    assert state is not None
    return state


def invite(state: c.Cycle, rater: str, role: str, agents: list[str]) -> c.Cycle:
    for e in inv.decide_invite(state, DEFAULT_SCHEME, rater_id=rater, rater_role=role,
                               agent_ids=agents, members=MEMBERS, invited_by="m", now=NOW):
        state = c.evolve(state, e) or state
    return state


def test_invitations_grow_and_repeats_change_nothing() -> None:
    state = invite(opened(), "r", "peer", ["a"])
    state = invite(state, "r", "peer", ["a", "b"])
    assert state.invitations[("r", "peer")] == {"a", "b"}
    assert inv.decide_invite(state, DEFAULT_SCHEME, rater_id="r", rater_role="peer",
                             agent_ids=["b"], members=MEMBERS, invited_by="m", now=NOW) == []
    assert inv.is_invited(state.invitations, "r", "peer", "b")
    assert not inv.is_invited(state.invitations, "r", "customer", "b")


@pytest.mark.parametrize(("rater", "role", "agents", "field"), [
    ("r", "self", ["a"], "rater_role"),
    ("r", "manager", ["a"], "rater_role"),
    ("r", "peer", [], "agent_ids"),
    ("r", "peer", ["z"], "agent_ids[0]"),
    ("a", "peer", ["b", "a"], "agent_ids[1]"),
    ("r:x y", "peer", ["a"], "rater_id"),
])
def test_bad_invitations(rater: str, role: str, agents: list[str], field: str) -> None:
    with pytest.raises(DomainError) as bad:
        invite(opened(), rater, role, agents)
    assert field in {e.field for e in bad.value.errors}


def test_only_colleagues_are_kept_from_rating_themselves() -> None:
    # only colleagues are kept from rating themselves; a customer id is someone else anyway
    state = invite(opened(), "a", "customer", ["a"])
    assert state.invitations[("a", "customer")] == {"a"}


def test_a_role_the_scheme_lacks_cannot_be_invited() -> None:
    bare = DEFAULT_SCHEME.model_copy(update={"roles": DEFAULT_SCHEME.roles[:2]})
    with pytest.raises(DomainError) as bad:
        inv.decide_invite(opened(), bare, rater_id="r", rater_role="peer", agent_ids=["a"],
                          members=MEMBERS, invited_by="m", now=NOW)
    assert bad.value.errors[0].field == "rater_role"


def test_only_invited_raters_evaluate_and_not_after_close() -> None:
    state = invite(opened(), "r", "peer", ["a"])
    with pytest.raises(Forbidden):
        c.decide_evaluate(state, DEFAULT_SCHEME, agent_id="b", rater_role="peer", rater_id="r",
                          scores={"collaboration": 50}, comment=None, agent_in_team=True,
                          now=NOW)
    closed = c.evolve(state, c.CycleClosed(team_id="t", period="2026-11", closed_at=NOW,
                                           forced=False, reason=None, missing=(),
                                           missing_policy=None, results=()))
    with pytest.raises(Conflict):
        inv.decide_invite(closed, DEFAULT_SCHEME, rater_id="r", rater_role="peer",
                          agent_ids=["b"], members=MEMBERS, invited_by="m", now=NOW)


def weighted() -> Scheme:
    return DEFAULT_SCHEME.model_copy(update={"roles": (
        RaterRole(role="self", weight=0.3, criteria=DEFAULT_SCHEME.roles[0].criteria),
        RaterRole(role="manager", weight=0.6, criteria=DEFAULT_SCHEME.roles[1].criteria),
        RaterRole(role="peer", weight=0.1, criteria=(Criterion(name="collaboration",
                                                               weight=1.0),)),
    )})


RATINGS = {"self": {"task_completion": 80.0},
           "manager": dict.fromkeys(("work_ability", "cooperation", "service",
                                     "report_timeliness", "report_reliability",
                                     "report_quality"), 80.0)}


def test_an_unrated_optional_role_drops_out_and_the_others_renormalise() -> None:
    scheme = weighted()
    with_peer = score_agent(scheme, None, {}, {**RATINGS, "peer": {"collaboration": 50.0}},
                            trained_roles={"peer"}, optional_roles={"peer"})
    without = score_agent(scheme, None, {}, RATINGS, optional_roles={"peer"})
    manager = 80  # no measured KPI has data: work_performance is the rated KPIs alone
    assert with_peer.composite == pytest.approx(24 + 0.6 * manager + 5, abs=1e-3)
    assert without.composite == pytest.approx((24 + 0.6 * manager) / 0.9, abs=1e-3)
    assert without.roles["peer"].status == "unrated"
    assert without.missing_roles == ()
    # without optional_roles the composite waits for the peer (the old contract)
    assert score_agent(scheme, None, {}, RATINGS).composite is None


def test_evaluations_recorded_without_training_do_not_count() -> None:
    scheme = weighted().model_copy(update={"requires_training": ("peer",)})
    legacy = c.EvaluationSubmitted(agent_id="a", rater_role="peer", rater_id="r",
                                   scores={"collaboration": 0}, revision=1, submitted_at=NOW)
    assert c.trained_roles_of(scheme, [legacy]) == frozenset()
    checked = legacy.model_copy(update={"training_on_record": True})
    assert c.trained_roles_of(scheme, [checked]) == {"peer"}
