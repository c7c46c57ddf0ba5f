"""Participatory goals, pure: issued targets, statuses, disputes, adjustments in scoring."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain import cycle as c
from service.domain import goals as g
from service.domain.errors import Conflict, DomainError
from service.domain.events import DomainEvent
from service.domain.scheme import DEFAULT_SCHEME, KpiOverride

NOW = datetime(2026, 11, 5, tzinfo=UTC)


def opened() -> c.Cycle:
    state = c.evolve(None, c.CycleOpened(
        team_id="t", period="2026-11", scheme_id=DEFAULT_SCHEME.scheme_id, scheme_version=1,
        deadline=datetime(2026, 12, 7, tzinfo=UTC), opened_at=NOW))
    assert state is not None
    return state


def apply(state: c.Cycle, events: list[DomainEvent]) -> c.Cycle:
    for e in events:
        result = c.evolve(state, e)
        assert result is not None
        state = result
    return state


def targets(state: c.Cycle, agent: str = "a", position: str | None = None
            ) -> dict[str, g.Target]:
    record = state.goals.get(agent)
    return g.issued_targets(DEFAULT_SCHEME, position, record.adjustments if record else {})


def test_targets_come_from_the_scheme_and_the_position() -> None:
    scheme = DEFAULT_SCHEME.model_copy(update={"position_overrides": {
        "after-sale": {"refund_ratio": KpiOverride(target=0.02, floor=0.2)}}})
    plain = g.issued_targets(scheme, "pre-sale", {})
    after = g.issued_targets(scheme, "after-sale", {})
    assert (plain["refund_ratio"].target, after["refund_ratio"].target) == (0.05, 0.02)
    assert set(plain) == {k.name for k in DEFAULT_SCHEME.kpis}
    assert plain["report_quality"].target is None and plain["report_quality"].kind == "rated"


def test_acknowledging_holds_only_for_the_targets_seen() -> None:
    state = opened()
    assert g.goal_status(None, targets(state)) == "pending"
    state = apply(state, g.decide_acknowledge(state, "a", targets(state), member=True,
                                              comment=None, now=NOW))
    assert g.goal_status(state.goals["a"], targets(state)) == "acknowledged"
    # nothing new when acknowledged again
    assert g.decide_acknowledge(state, "a", targets(state), member=True, comment="x",
                                now=NOW) == []
    # a change of position issues other targets: pending again
    scheme = DEFAULT_SCHEME.model_copy(update={"position_overrides": {
        "lead": {"order_amount": KpiOverride(target=90000)}}})
    moved = g.issued_targets(scheme, "lead", {})
    assert g.goal_status(state.goals["a"], moved) == "pending"


def test_a_dispute_needs_a_comment_and_known_kpis_and_is_resolved_once() -> None:
    state = opened()
    with pytest.raises(DomainError) as bad:
        g.decide_dispute(state, "a", targets(state), member=True, kpis=["charm"], comment=" ",
                         now=NOW)
    assert {e.field for e in bad.value.errors} == {"comment", "kpis[0]"}
    with pytest.raises(Conflict):
        g.decide_resolve(state, "a", targets(state), decision="kept", adjustments={},
                         reason="r", resolved_by="m", now=NOW)
    state = apply(state, g.decide_dispute(state, "a", targets(state), member=True,
                                          kpis=["order_amount"], comment="too high", now=NOW))
    assert g.goal_status(state.goals["a"], targets(state)) == "disputed"
    with pytest.raises(Conflict):
        g.decide_dispute(state, "a", targets(state), member=True, kpis=[], comment="again",
                         now=NOW)
    change = {"order_amount": g.TargetAdjustment(target=30000)}
    state = apply(state, g.decide_resolve(state, "a", targets(state), decision="adjusted",
                                          adjustments=change, reason="season",
                                          resolved_by="m", now=NOW))
    assert g.goal_status(state.goals["a"], targets(state)) == "pending"
    assert targets(state)["order_amount"].target == 30000
    assert targets(state)["order_amount"].adjusted is True
    assert targets(state, "b")["order_amount"].target == 50000


@pytest.mark.parametrize(("change", "field"), [
    ({"order_amount": g.TargetAdjustment(target=-1)}, "targets.order_amount.target"),
    ({"churn_rate": g.TargetAdjustment(target=0.5)}, "targets.churn_rate.target"),
    ({"churn_rate": g.TargetAdjustment(floor=0.01)}, "targets.churn_rate.target"),
    ({"report_quality": g.TargetAdjustment(target=1)}, "targets.report_quality"),
    ({"happiness": g.TargetAdjustment(target=1)}, "targets.happiness"),
    ({"order_amount": g.TargetAdjustment()}, "targets.order_amount"),
    ({"order_amount": g.TargetAdjustment(target=float("inf"))}, "targets.order_amount.target"),
])
def test_adjustments_must_make_sense(change: dict[str, g.TargetAdjustment], field: str) -> None:
    state = opened()
    state = apply(state, g.decide_dispute(state, "a", targets(state), member=True, kpis=[],
                                          comment="no", now=NOW))
    with pytest.raises(DomainError) as bad:
        g.decide_resolve(state, "a", targets(state), decision="adjusted", adjustments=change,
                         reason="r", resolved_by="m", now=NOW)
    assert field in {e.field for e in bad.value.errors}


def test_goals_are_fixed_once_the_cycle_closes() -> None:
    state = opened()
    closed = apply(state, [c.CycleClosed(team_id="t", period="2026-11", closed_at=NOW,
                                         forced=False, reason=None, missing=(),
                                         missing_policy=None, results=())])
    with pytest.raises(Conflict):
        g.decide_acknowledge(closed, "a", targets(closed), member=True, comment=None, now=NOW)
    with pytest.raises(DomainError):
        g.decide_acknowledge(state, "z", targets(state), member=False, comment=None, now=NOW)


def test_adjusted_targets_change_that_agents_score_only() -> None:
    state = opened()
    state = apply(state, g.decide_dispute(state, "a", targets(state), member=True, kpis=[],
                                          comment="no", now=NOW))
    state = apply(state, g.decide_resolve(
        state, "a", targets(state), decision="adjusted",
        adjustments={"order_amount": g.TargetAdjustment(target=25000)}, reason="r",
        resolved_by="m", now=NOW))
    for agent in ("a", "b"):
        state = apply(state, [
            c.EvaluationSubmitted(agent_id=agent, rater_role="self", rater_id=agent,
                                  scores={"task_completion": 80}, revision=1, submitted_at=NOW),
            c.EvaluationSubmitted(agent_id=agent, rater_role="manager", rater_id="m",
                                  scores=dict.fromkeys(("work_ability", "cooperation", "service",
                                                        "report_timeliness",
                                                        "report_reliability",
                                                        "report_quality"), 80.0),
                                  revision=1, submitted_at=NOW),
        ])
    roster = [c.RosterEntry(agent, agent, None, kpis={"order_amount": 25000.0})
              for agent in ("a", "b")]
    results, _ = c.score_roster(state, DEFAULT_SCHEME, roster, None)
    by = {r.agent_id: r.score for r in results}
    assert by["a"].work_performance is not None and by["b"].work_performance is not None
    assert by["a"].work_performance.kpis["order_amount"].attainment == 100
    assert by["b"].work_performance.kpis["order_amount"].attainment == 50
    assert any("targets adjusted" in n for n in by["a"].notes)
    assert by["a"].composite is not None and by["b"].composite is not None
    assert by["a"].composite > by["b"].composite
