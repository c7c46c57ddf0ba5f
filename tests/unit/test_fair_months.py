"""Fair months through the pure cycle decisions: who is ranked, on what yardstick, with what
consequences (version 2 of online-shop-cs; no database)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from service.domain import cycle as c
from service.domain.events import DomainEvent
from service.domain.presence import DateRange, Span
from service.domain.results import consecutive_last_places, last_place_agents
from service.domain.scheme import DEFAULT_SCHEME, DEFAULT_SCHEME_V2, Scheme, validate_scheme
from service.domain.scheme_history import decide_builtin, evolve
from tests.support.kpis import builtin_kpis

NOV = "2026-11"
OPENED = datetime(2026, 11, 1, tzinfo=UTC)
CLOSED = datetime(2026, 12, 3, tzinfo=UTC)
MANAGER = {"work_ability": 80.0, "cooperation": 80.0, "service": 80.0,
           "report_timeliness": 80.0, "report_reliability": 80.0, "report_quality": 80.0}
#: A month of full data: every measured KPI has a value.
FULL = {"consultations": 100.0, "conversions": 30.0, "lost_customers": 5.0, "orders": 40.0,
        "valid_orders": 38.0, "paid_orders": 36.0, "refunded_orders": 1.0,
        "paying_customers": 30.0, "order_amount": 50000.0, "response_time_seconds": 300.0}
LEAVE_ALL_MONTH = (DateRange(date(2026, 10, 1), date(2027, 3, 31)),)


def month(scheme: Scheme, evaluated: list[str], score: dict[str, float]) -> c.Cycle:
    """An open month with self and manager evaluations of the agents named."""
    events: list[DomainEvent] = [c.CycleOpened(
        team_id="t", period=NOV, scheme_id=scheme.scheme_id, scheme_version=scheme.version,
        deadline=CLOSED, opened_at=OPENED)]
    for agent in evaluated:
        s = score.get(agent, 80.0)
        events.append(c.EvaluationSubmitted(
            agent_id=agent, rater_role="self", rater_id=agent, scores={"task_completion": s},
            revision=1, submitted_at=OPENED))
        events.append(c.EvaluationSubmitted(
            agent_id=agent, rater_role="manager", rater_id="m", scores=dict.fromkeys(MANAGER, s),
            revision=1, submitted_at=OPENED, training_on_record=True))
    state = c.evolve_all(None, events)
    assert state is not None
    return state


def agent(agent_id: str, totals: dict[str, float] | None = None, *, span: Span | None = None,
          absences: tuple[DateRange, ...] = (), position: str | None = None) -> c.RosterEntry:
    t = dict(FULL if totals is None else totals)
    responses = 10 if "response_time_seconds" in t else 0
    return c.RosterEntry(agent_id=agent_id, name=agent_id.upper(), position=position,
                         kpis=builtin_kpis(t, responses), totals=t, span=span or Span(),
                         absences=absences)


def close(scheme: Scheme, roster: list[c.RosterEntry], score: dict[str, float] | None = None,
          evaluated: list[str] | None = None, **kwargs: Any) -> c.CycleClosed:
    state = month(scheme, evaluated if evaluated is not None else [a.agent_id for a in roster],
                  score or {})
    [closed] = c.decide_close(state, scheme, roster, force=False, reason=None,
                              missing_policy=None, now=CLOSED, **kwargs)
    assert isinstance(closed, c.CycleClosed)
    return closed


def by_id(closed: c.CycleClosed) -> dict[str, c.FrozenResult]:
    return {r.agent_id: r for r in closed.results}


def test_version_2_is_valid_and_carries_the_fields_part_b_relies_on() -> None:
    assert validate_scheme(DEFAULT_SCHEME_V2) == []
    results = DEFAULT_SCHEME_V2.results
    assert (results.fair_months, results.min_active_share, results.release,
            results.release_days, results.appeal_days) == (True, 0.5, "after_interview", 3, 5)
    assert [k.name for k in DEFAULT_SCHEME_V2.kpis if k.prorate] == ["order_amount"]
    assert DEFAULT_SCHEME_V2.requires_training == (
        "manager", "peer", "subordinate", "customer", "expert")
    # Version 1 keeps its behaviour: no fair months, releases on publication.
    assert not DEFAULT_SCHEME.results.fair_months
    assert DEFAULT_SCHEME.results.release == "on_publication"


def test_only_a_summed_kpi_can_be_prorated() -> None:
    kpis = tuple(k.model_copy(update={"prorate": True}) if k.name == "conversion_rate" else k
                 for k in DEFAULT_SCHEME_V2.kpis)
    problems = validate_scheme(DEFAULT_SCHEME_V2.model_copy(update={"kpis": kpis}))
    assert [p.field for p in problems] == ["kpis.conversion_rate.prorate"]


def test_the_builtin_versions_are_appended_once_and_an_upgrade_gets_version_2() -> None:
    new = decide_builtin(None)
    assert [e.version for e in new] == [1, 2]  # type: ignore[attr-defined]
    state = None
    for e in new:
        state = evolve(state, e)
    assert decide_builtin(state) == []
    # An installation that only had version 1 (before this upgrade) gets version 2 once.
    upgraded = evolve(None, new[0])
    [appended] = decide_builtin(upgraded)
    assert appended.version == 2  # type: ignore[attr-defined]
    assert decide_builtin(evolve(upgraded, appended)) == []


def test_on_leave_all_month_is_not_ranked_and_no_evaluation_of_them_is_expected() -> None:
    roster = [agent("a"), agent("b"), agent("c"),
              agent("leave", {}, absences=LEAVE_ALL_MONTH)]
    # No evaluation of the agent on leave: the close does not wait for them.
    closed = close(DEFAULT_SCHEME_V2, roster, evaluated=["a", "b", "c"])
    assert closed.missing == ()
    results = by_id(closed)
    leave = results["leave"]
    assert leave.rank is None and leave.eligibility is not None
    assert (leave.eligibility.active_days, leave.eligibility.ranked) == (0, False)
    assert leave.eligibility.reason == "active 0 of 30 days"
    assert [e.agent_id for e in c.frozen_ranking(closed)] == ["a", "b", "c"]
    # Version 1 would have waited for them, and ranked them.
    with pytest.raises(c.Conflict):
        close(DEFAULT_SCHEME, roster, evaluated=["a", "b", "c"])


def test_not_ranked_agents_get_nothing_and_their_month_breaks_a_streak() -> None:
    roster = [agent("a"), agent("b"), agent("c"), agent("weak", {}, absences=LEAVE_ALL_MONTH)]
    closed = close(DEFAULT_SCHEME_V2, roster, {"a": 90, "b": 70, "c": 50, "weak": 1},
                   evaluated=["a", "b", "c", "weak"])
    state = c.evolve(month(DEFAULT_SCHEME_V2, [], {}), closed)
    [published] = c.decide_publish(state, CLOSED, policy=DEFAULT_SCHEME_V2.results,
                                   currency="CNY", previous_last_places={"weak": 2})
    assert isinstance(published, c.CyclePublished)
    assert "weak" not in {d.agent_id for d in published.decisions}
    assert {(d.kind, d.agent_id) for d in published.decisions if d.kind != "improvement_plan"
            } == {("reward", "a"), ("deduction", "c")}
    last = last_place_agents(c.frozen_ranking(closed), min_ranked_agents=3)
    assert last == {"c"}
    # Last in September and October, not ranked in November: December starts a new count.
    assert consecutive_last_places("weak", "2026-12", {"2026-09": {"weak"}, "2026-10": {"weak"},
                                                       NOV: last}) == 0


def test_every_agent_not_ranked_means_no_first_and_no_last() -> None:
    roster = [agent(x, absences=LEAVE_ALL_MONTH) for x in ("a", "b", "c")]
    closed = close(DEFAULT_SCHEME_V2, roster, evaluated=[])
    assert closed.missing == () and c.frozen_ranking(closed) == []
    state = c.evolve(month(DEFAULT_SCHEME_V2, [], {}), closed)
    [published] = c.decide_publish(state, CLOSED, policy=DEFAULT_SCHEME_V2.results,
                                   currency="CNY", previous_last_places={})
    assert published.decisions == ()  # type: ignore[attr-defined]


def test_exactly_three_ranked_of_five_have_consequences_and_two_ranked_have_none() -> None:
    away = dict(absences=LEAVE_ALL_MONTH)
    five = [agent("a"), agent("b"), agent("c"), agent("d", **away), agent("e", **away)]
    scores = {"a": 90, "b": 70, "c": 50, "d": 10, "e": 5}
    closed = close(DEFAULT_SCHEME_V2, five, scores, evaluated=list(scores))
    assert [e.agent_id for e in c.frozen_ranking(closed)] == ["a", "b", "c"]
    state = c.evolve(month(DEFAULT_SCHEME_V2, [], {}), closed)
    [published] = c.decide_publish(state, CLOSED, policy=DEFAULT_SCHEME_V2.results,
                                   currency="CNY", previous_last_places={})
    kinds = {(d.kind, d.agent_id) for d in published.decisions}  # type: ignore[attr-defined]
    assert kinds == {("reward", "a"), ("deduction", "c"), ("improvement_plan", "b"),
                     ("improvement_plan", "c")}
    # With a third agent away too, two are ranked: below the minimum of 3, nothing applies
    # although five agents are on the roster.
    four_away = [agent("a"), agent("b"), agent("c", **away), agent("d", **away),
                 agent("e", **away)]
    closed = close(DEFAULT_SCHEME_V2, four_away, scores, evaluated=list(scores))
    state = c.evolve(month(DEFAULT_SCHEME_V2, [], {}), closed)
    [published] = c.decide_publish(state, CLOSED, policy=DEFAULT_SCHEME_V2.results,
                                   currency="CNY", previous_last_places={})
    assert published.decisions == ()  # type: ignore[attr-defined]


def test_hired_after_or_left_before_the_month_are_not_in_it_at_all() -> None:
    roster = [agent("a"), agent("b"), agent("c"),
              agent("future", span=Span(hired_on=date(2026, 12, 1))),
              agent("gone", span=Span(left_on=date(2026, 10, 31)))]
    closed = close(DEFAULT_SCHEME_V2, roster, evaluated=["a", "b", "c"])
    assert sorted(by_id(closed)) == ["a", "b", "c"]


def test_one_yardstick_unavailable_kpis_drop_for_everyone_and_no_data_scores_zero() -> None:
    # Nobody's order system sent refunds/paying customers... in fact none sent orders at all:
    # the order KPIs are unavailable for the team. "quiet" had no chat either: their chat KPIs
    # have no data while teammates have, and score 0.
    chat = {k: v for k, v in FULL.items() if k in ("consultations", "conversions",
                                                   "lost_customers", "response_time_seconds")}
    roster = [agent("a", chat), agent("b", chat), agent("quiet", {})]
    closed = close(DEFAULT_SCHEME_V2, roster)
    results = by_id(closed)
    kpis = results["quiet"].score.work_performance.kpis  # type: ignore[union-attr]
    unavailable = {"order_amount", "valid_order_ratio", "payment_ratio", "refund_ratio",
                   "avg_order_value"}
    assert {n for n, k in kpis.items() if k.status == "unavailable"} == unavailable
    assert {n for n, k in kpis.items() if k.status == "no_data"} == {
        "conversion_rate", "avg_response_time_seconds", "churn_rate"}
    assert all(kpis[n].attainment == 0.0 and not kpis[n].dropped for n in
               ("conversion_rate", "avg_response_time_seconds", "churn_rate"))
    # Same KPI set and weights for every ranked agent.
    weights = {a: {n: k.effective_weight for n, k in r.score.work_performance.kpis.items()}
               for a, r in results.items()
               if r.score.work_performance is not None}
    assert weights["a"] == weights["quiet"] == weights["b"]
    assert results["a"].score.composite > results["quiet"].score.composite  # type: ignore[operator]
    warnings = c.fairness_warnings(closed.results)
    assert {w["kind"] for w in warnings} == {"kpi_no_data", "kpi_unavailable"}
    no_data = next(w for w in warnings if w["kind"] == "kpi_no_data")
    assert no_data["agents"] == [{"agent_id": "quiet", "kpis": [
        "avg_response_time_seconds", "churn_rate", "conversion_rate"]}]
    # Version 1 lets "quiet" off: the KPIs without data drop out for them alone.
    v1 = by_id(close(DEFAULT_SCHEME, roster))
    assert v1["quiet"].score.work_performance.kpis["conversion_rate"].dropped  # type: ignore
    assert v1["quiet"].eligibility is None


def test_a_part_month_agent_has_prorated_order_amount_target_and_floor() -> None:
    half = (DateRange(date(2026, 11, 16), date(2026, 11, 30)),)
    roster = [agent("full"), agent("half", {**FULL, "order_amount": 25000.0}, absences=half),
              agent("c")]
    results = by_id(close(DEFAULT_SCHEME_V2, roster))
    kpi = results["half"].score.work_performance.kpis["order_amount"]  # type: ignore[union-attr]
    assert (kpi.target, kpi.floor, kpi.attainment, kpi.prorated_by) == (25000.0, 0.0, 100.0, 0.5)
    full = results["full"].score.work_performance.kpis["order_amount"]  # type: ignore[union-attr]
    assert (full.target, full.prorated_by) == (50000.0, None)
    # Ratios are never pro-rated.
    ratio = results["half"].score.work_performance.kpis["conversion_rate"]  # type: ignore
    assert ratio.target == 0.30


def test_a_live_per_active_day_kpi_divides_by_the_days_so_far() -> None:
    # Given a KPI of tickets per active day, and an agent away 2-3 November
    base = DEFAULT_SCHEME_V2.model_dump()
    tickets = Scheme.model_validate(base | {
        "metrics": [*base["metrics"], {"name": "tickets", "unit": "count"}],
        "kpis": [*base["kpis"], {"name": "tickets_per_day", "kind": "measured", "weight": 0.0,
                                 "target": 10.0, "floor": 0.0,
                                 "formula": {"op": "per_active_day", "of": "tickets"}}]})
    away = (DateRange(date(2026, 11, 2), date(2026, 11, 3)),)
    roster = [c.RosterEntry(agent_id="a", name="A", position=None, totals={"tickets": 30.0},
                            observations={"tickets": 3}, absences=away)]
    # When the month is measured on 10 November (open) and at its end (closed)
    [live] = c.measure(tickets, NOV, roster, through=date(2026, 11, 10))
    [whole] = c.measure(tickets, NOV, roster)
    # Then the open month divides by the 8 active days so far, the closed one by 28
    assert live.kpis["tickets_per_day"] == pytest.approx(30 / 8)
    assert whole.kpis["tickets_per_day"] == pytest.approx(30 / 28)
    # and before the month starts there is no day to divide by
    [early] = c.measure(tickets, NOV, roster, through=date(2026, 10, 30))
    assert early.kpis["tickets_per_day"] is None
