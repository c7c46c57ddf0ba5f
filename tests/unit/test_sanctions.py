"""Consequences of publication, pure: decisions in the event, the ledger, plans and reviews."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from service.domain import cycle as c
from service.domain import sanctions as s
from service.domain.errors import Conflict, DomainError, NotFound
from service.domain.events import DomainEvent, decode
from service.domain.ranking import rank
from service.domain.scheme import ResultsPolicy
from service.domain.scoring import AgentScore

POLICY = ResultsPolicy()
OPENED = datetime(2026, 11, 1, tzinfo=UTC)
PUBLISHED = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)
DUE = PUBLISHED + timedelta(days=7)
ACTIONS = [s.PlanAction(action="shadow a senior agent", due_date=date(2026, 12, 20))]


def _score(composite: float) -> AgentScore:
    return AgentScore(scheme_id="online-shop-cs", scheme_version=1, position=None,
                      formula_version="test", composite=composite, missing_roles=(), roles={},
                      work_performance=None, notes=())


def closed(scores: dict[str, float], at: datetime = PUBLISHED) -> c.CycleClosed:
    """A close event freezing the ranking of these composites."""
    results = [
        c.FrozenResult(agent_id=e.agent_id, name=e.agent_id, position=None, kpis={}, totals={},
                       score=_score(e.score), rank=e.rank, tied=e.tied, places=e.places)
        for e in rank(scores)
    ]
    return c.CycleClosed(team_id="t", period="2026-11", closed_at=at, forced=False, reason=None,
                         missing=(), missing_policy=None, results=tuple(results))


class Month:
    """A team's month driven through its pure decisions, remembering every event."""

    def __init__(self, currency: str = "CNY") -> None:
        self.currency = currency
        opened = c.CycleOpened(team_id="t", period="2026-11", scheme_id="online-shop-cs",
                               scheme_version=1, deadline=OPENED, opened_at=OPENED)
        self.events: list[DomainEvent] = [opened]
        self.state = c.evolve(None, opened)

    def _add(self, e: DomainEvent) -> DomainEvent:
        self.events.append(e)
        self.state = c.evolve(self.state, e)
        return e

    def publish(self, scores: dict[str, float], at: datetime = PUBLISHED,
                previous: dict[str, int] | None = None) -> c.CyclePublished:
        if self.state is not None and self.state.status != "open":
            self._add(c.CycleReopened(team_id="t", period="2026-11", reopened_at=at,
                                      reason="a dispute"))
        self._add(closed(scores, at))
        [published] = c.decide_publish(self.state, at, policy=POLICY, currency=self.currency,
                                       previous_last_places=previous or {})
        self._add(published)
        assert isinstance(published, c.CyclePublished)
        return published

    @property
    def ledger(self) -> s.Ledger:
        ledger = s.fold_ledger(None, self.events)
        assert ledger is not None
        return ledger

    def settlements(self) -> list[s.Settlement]:
        """Replay the stream as the projection does, collecting what each publication wrote."""
        ledger: s.Ledger | None = None
        out = []
        for e in self.events:
            if isinstance(e, c.CyclePublished) and ledger is not None:
                ledger, settlement = s.settle(ledger, e)
                out.append(settlement)
            else:
                ledger = s.evolve_ledger(ledger, e)
        return out


def entries(month: Month) -> list[s.LedgerEntry]:
    return [x for settlement in month.settlements() for x in settlement.entries]


def owed(month: Month) -> dict[tuple[str, str], float]:
    """What the ledger says each agent is owed, per kind: the sum of every entry."""
    sums: dict[tuple[str, str], list[float]] = defaultdict(list)
    for x in entries(month):
        if x.amount is not None:
            sums[(x.kind, x.agent_id)].append(x.amount)
    return {k: math.fsum(v) for k, v in sums.items() if math.fsum(v) != 0}


def decided(published: c.CyclePublished) -> dict[tuple[str, str], float]:
    return {(d.kind, d.agent_id): d.amount for d in published.decisions
            if d.amount is not None and d.amount != 0}


# --- decisions recorded at publication -----------------------------------------------------


def test_publication_records_its_decisions_with_currency_and_deadline() -> None:
    # Given a closed month ranked a, b, c, d
    month = Month(currency="KRW")
    # When it is published
    published = month.publish({"a": 90, "b": 80, "c": 70, "d": 60})
    # Then the event carries every consequence, in the team's currency, plans due in 7 days
    assert published.publication == 1
    assert [(d.kind, d.agent_id, d.amount, d.currency, d.due_at) for d in published.decisions] == [
        ("reward", "a", 100.0, "KRW", None),
        ("deduction", "d", 100.0, "KRW", None),
        ("improvement_plan", "c", None, None, DUE),
        ("improvement_plan", "d", None, None, DUE),
    ]


def test_only_a_closed_cycle_is_published() -> None:
    month = Month()
    with pytest.raises(Conflict):
        c.decide_publish(month.state, PUBLISHED, policy=POLICY, currency="CNY",
                         previous_last_places={})
    with pytest.raises(NotFound):
        c.decide_publish(None, PUBLISHED, policy=POLICY, currency="CNY", previous_last_places={})


def test_a_third_last_place_in_a_row_records_a_review_with_its_months() -> None:
    published = Month().publish({"a": 90, "b": 80, "c": 70, "d": 60}, previous={"d": 2})
    review = [d for d in published.decisions if d.kind == "reassignment_review"]
    assert [(d.agent_id, d.months) for d in review] == [("d", ("2026-09", "2026-10", "2026-11"))]


def test_unranked_agents_are_left_out_of_the_decisions() -> None:
    month = Month()
    close = closed({"a": 90, "b": 80, "c": 70})
    unscored = close.results[0].model_copy(update={
        "agent_id": "z", "rank": None, "places": None,
        "score": _score(0).model_copy(update={"composite": None})})
    month._add(close.model_copy(update={"results": (*close.results, unscored)}))
    [published] = c.decide_publish(month.state, PUBLISHED, policy=POLICY, currency="CNY",
                                   previous_last_places={})
    assert isinstance(published, c.CyclePublished)
    assert "z" not in {d.agent_id for d in published.decisions}
    assert {d.agent_id for d in published.decisions if d.kind == "deduction"} == {"c"}


def test_a_version_1_publication_reads_as_one_without_decisions() -> None:
    old = {"team_id": "t", "period": "2026-11", "published_at": PUBLISHED.isoformat(),
           "publication": 1}
    e = decode("CyclePublished", 1, old)
    assert isinstance(e, c.CyclePublished) and e.decisions == ()


# --- the ledger -----------------------------------------------------------------------------


def test_a_first_publication_grants_each_decision() -> None:
    month = Month()
    month.publish({"a": 90, "b": 80, "c": 70, "d": 60})
    [settlement] = month.settlements()
    assert settlement.ended == ()
    assert [(x.kind, x.agent_id, x.entry, x.initial_status, x.ordinal)
            for x in settlement.entries] == [
        ("reward", "a", "grant", "active", 0),
        ("deduction", "d", "grant", "active", 1),
        ("improvement_plan", "c", "grant", "due", 2),
        ("improvement_plan", "d", "grant", "due", 3),
    ]
    reward = settlement.entries[0]
    assert reward.id == "t:2026-11:a:reward:p1"
    assert (reward.rank, reward.places, reward.currency) == (1, (1, 1), "CNY")
    assert "rank 1 of 4" in reward.reason


def test_a_correction_reverses_what_no_longer_holds_and_the_ledger_sums_to_what_is_owed() -> None:
    # Given a published month a, b, c, d
    month = Month()
    month.publish({"a": 90, "b": 80, "c": 70, "d": 60})
    # When it is reopened, d's evaluation is revised, and it is published again: d, a, b, c
    second = month.publish({"a": 90, "b": 80, "c": 70, "d": 95},
                           at=PUBLISHED + timedelta(days=2))
    settlement = month.settlements()[1]
    # Then a's reward and d's deduction are reversed, d's plan cancelled; d is rewarded, c is
    # deducted, b owes a plan and c's plan simply continues
    assert [(x.kind, x.agent_id, x.entry, x.amount, x.reverses) for x in settlement.entries] == [
        ("deduction", "d", "reversal", -100.0, "t:2026-11:d:deduction:p1"),
        ("improvement_plan", "d", "cancellation", None, "t:2026-11:d:improvement_plan:p1"),
        ("reward", "a", "reversal", -100.0, "t:2026-11:a:reward:p1"),
        ("reward", "d", "grant", 100.0, None),
        ("deduction", "c", "grant", 100.0, None),
        ("improvement_plan", "b", "grant", None, None),
    ]
    assert dict(settlement.ended) == {"t:2026-11:d:deduction:p1": "reversed",
                                      "t:2026-11:d:improvement_plan:p1": "cancelled",
                                      "t:2026-11:a:reward:p1": "reversed"}
    reversal = settlement.entries[2]
    assert "publication 2 (correction: a dispute) no longer grants this reward" in reversal.reason
    assert "now rank 2 of 4" in reversal.reason and reversal.rank == 2
    assert owed(month) == decided(second) == {("reward", "d"): 100.0, ("deduction", "c"): 100.0}
    # c's plan is still the one publication 1 opened, with its deadline
    plan = month.ledger.obligation("improvement_plan", "c")
    assert plan is not None and (plan.publication, plan.due_at) == (1, DUE)


def test_a_publication_that_changes_nothing_writes_nothing() -> None:
    month = Month()
    month.publish({"a": 90, "b": 80, "c": 70, "d": 60})
    month.publish({"a": 91, "b": 80, "c": 70, "d": 60}, at=PUBLISHED + timedelta(days=1))
    assert month.settlements()[1] == s.Settlement()


def test_a_correction_to_everyone_tied_reverses_everything() -> None:
    month = Month()
    month.publish({"a": 90, "b": 80, "c": 70})
    month.publish({"a": 80, "b": 80, "c": 80}, at=PUBLISHED + timedelta(days=1))
    assert owed(month) == {}
    assert month.ledger.active == {}
    assert {x.entry for x in month.settlements()[1].entries} == {"reversal", "cancellation"}


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(0, 4), min_size=1, max_size=6), min_size=1, max_size=5))
def test_after_any_corrections_the_ledger_sums_to_the_latest_publication(
    publications: Sequence[Sequence[int]],
) -> None:
    month = Month()
    latest = None
    for i, scores in enumerate(publications):
        latest = month.publish({f"a{j}": float(v) for j, v in enumerate(scores)},
                               at=PUBLISHED + timedelta(days=i))
    assert latest is not None
    assert owed(month) == decided(latest)
    # and exactly the latest decisions are in force, each entry written once
    assert {(x.kind, x.agent_id) for x in month.ledger.active.values()} == {
        (d.kind, d.agent_id) for d in latest.decisions}
    ids = [x.id for x in entries(month)]
    assert len(ids) == len(set(ids))


# --- improvement plans ----------------------------------------------------------------------


def published_month() -> Month:
    month = Month()
    month.publish({"a": 90, "b": 80, "c": 70, "d": 60})
    return month


def submit(month: Month, plan: s.Plan | None, agent: str, now: datetime) -> s.Plan | None:
    for e in s.decide_submit_plan(plan, month.ledger, agent, root_causes="slow replies",
                                  actions=ACTIONS, now=now):
        plan = s.evolve_plan(plan, e)
    return plan


def review(month: Month, plan: s.Plan | None, agent: str, decision: str, now: datetime,
           comment: str = "see notes") -> s.Plan | None:
    for e in s.decide_review_plan(plan, month.ledger, agent, decision=decision,  # type: ignore[arg-type]
                                  comment=comment, reviewer_id="m", now=now):
        plan = s.evolve_plan(plan, e)
    return plan


def test_a_plan_on_time_and_one_after_the_deadline_which_is_accepted_and_late() -> None:
    month = published_month()
    [on_time] = s.decide_submit_plan(None, month.ledger, "c", root_causes="x", actions=ACTIONS,
                                     now=DUE)
    [late] = s.decide_submit_plan(None, month.ledger, "d", root_causes="x", actions=ACTIONS,
                                  now=DUE + timedelta(seconds=1))
    assert isinstance(on_time, s.PlanSubmitted) and isinstance(late, s.PlanSubmitted)
    assert (on_time.late, late.late) == (False, True)
    assert (late.publication, late.due_at, late.submission) == (1, DUE, 1)


def test_rejected_then_resubmitted_then_approved_and_then_closed() -> None:
    month = published_month()
    plan = submit(month, None, "c", PUBLISHED + timedelta(days=1))
    with pytest.raises(DomainError, match="say why") as refused:
        review(month, plan, "c", "rejected", PUBLISHED + timedelta(days=2), comment=" ")
    assert refused.value.errors[0].field == "comment"
    plan = review(month, plan, "c", "rejected", PUBLISHED + timedelta(days=2))
    with pytest.raises(Conflict, match="already rejected; the agent may resubmit"):
        review(month, plan, "c", "approved", PUBLISHED + timedelta(days=2))
    plan = submit(month, plan, "c", PUBLISHED + timedelta(days=3))
    plan = review(month, plan, "c", "approved", PUBLISHED + timedelta(days=4))
    assert plan is not None
    record = plan.record(1)
    assert [x.submission for x in record.submissions] == [1, 2]
    assert record.decision is not None and record.decision.decision == "approved"
    with pytest.raises(Conflict, match="approved"):
        submit(month, plan, "c", PUBLISHED + timedelta(days=5))


def test_nothing_to_review_before_a_submission() -> None:
    with pytest.raises(Conflict, match="not submitted"):
        review(published_month(), None, "c", "approved", PUBLISHED)


def test_a_plan_must_say_why_and_what_will_be_done() -> None:
    with pytest.raises(DomainError) as refused:
        s.decide_submit_plan(None, published_month().ledger, "c", root_causes="  ",
                             actions=[s.PlanAction(action=" ", due_date=date(2026, 12, 1))],
                             now=PUBLISHED)
    assert [e.field for e in refused.value.errors] == ["root_causes", "actions.0.action"]
    with pytest.raises(DomainError) as refused:
        s.decide_submit_plan(None, published_month().ledger, "c", root_causes="x", actions=[],
                             now=PUBLISHED)
    assert [e.field for e in refused.value.errors] == ["actions"]


def test_no_plan_is_owed_outside_the_bottom_two_or_before_publication() -> None:
    month = published_month()
    with pytest.raises(Conflict, match="decided no improvement plan for agent a"):
        submit(month, None, "a", PUBLISHED)
    unpublished = Month()
    unpublished._add(closed({"a": 90, "b": 80, "c": 70}))
    with pytest.raises(Conflict, match="has not been published"):
        submit(unpublished, None, "c", PUBLISHED)


def test_a_plan_cancelled_by_a_correction_is_no_longer_owed() -> None:
    month = published_month()
    month.publish({"a": 90, "b": 80, "c": 70, "d": 95}, at=PUBLISHED + timedelta(days=1))
    with pytest.raises(Conflict, match="cancelled by a later publication"):
        submit(month, None, "d", PUBLISHED + timedelta(days=2))


def test_overdue_is_recorded_once_after_the_deadline_and_never_for_a_submitted_plan() -> None:
    month = published_month()
    assert s.decide_plan_overdue(None, month.ledger, "d", DUE) == []
    [overdue] = s.decide_plan_overdue(None, month.ledger, "d", DUE + timedelta(seconds=1))
    assert isinstance(overdue, s.PlanOverdue) and overdue.due_at == DUE
    plan = s.evolve_plan(None, overdue)
    assert s.decide_plan_overdue(plan, month.ledger, "d", DUE + timedelta(days=3)) == []
    submitted = submit(month, None, "c", DUE - timedelta(days=1))
    assert s.decide_plan_overdue(submitted, month.ledger, "c", DUE + timedelta(days=1)) == []
    assert s.decide_plan_overdue(None, month.ledger, "a", DUE + timedelta(days=1)) == []


# --- reassignment reviews -------------------------------------------------------------------


def test_a_review_is_decided_once_with_a_note() -> None:
    month = Month()
    month.publish({"a": 90, "b": 80, "c": 70, "d": 60}, previous={"d": 2})
    with pytest.raises(DomainError) as refused:
        s.decide_reassignment(None, month.ledger, "d", decision="retain", note="",
                              decided_by="m", now=DUE)
    assert refused.value.errors[0].field == "note"
    [decided] = s.decide_reassignment(None, month.ledger, "d", decision="retain",
                                      note="new training", decided_by="m", now=DUE)
    assert isinstance(decided, s.ReassignmentReviewDecided)
    assert decided.review_id == "t:2026-11:d"
    state = s.evolve_review(None, decided)
    with pytest.raises(Conflict, match="already decided: retain by m"):
        s.decide_reassignment(state, month.ledger, "d", decision="reassign", note="x",
                              decided_by="m2", now=DUE)
    with pytest.raises(NotFound):
        s.decide_reassignment(None, month.ledger, "c", decision="reassign", note="x",
                              decided_by="m", now=DUE)


def test_review_ids_with_colons_list_every_reading() -> None:
    assert s.parse_review_id("t-1:2026-11:a-1") == [("t-1", "2026-11", "a-1")]
    assert s.parse_review_id("a:2026-11:b:2026-12:c") == [
        ("a", "2026-11", "b:2026-12:c"), ("a:2026-11:b", "2026-12", "c")]
    assert s.parse_review_id("t:2026-13:a") == []
    assert s.parse_review_id("nonsense") == []
    assert s.parse_review_id(":2026-11:a") == []


# --- corrections carry forward ----------------------------------------------------------------


def _revise(month: Month, previous: dict[str, int]) -> list[DomainEvent]:
    return c.decide_revise_consequences(
        month.state, PUBLISHED + timedelta(days=20), policy=POLICY,
        previous_last_places=previous, corrected_period="2026-10", corrected_publication=2,
        correction="scores keyed for the wrong agent")


def test_a_revision_re_derives_only_the_reviews_and_names_the_correction() -> None:
    month = Month()
    month.publish({"a": 90, "b": 80, "c": 70}, previous={"c": 2})
    before = month.ledger
    assert before.obligation("reassignment_review", "c") is not None
    # October no longer has c last: November's streak is one month long
    [revised] = _revise(month, {})
    assert isinstance(revised, c.ConsequencesRevised)
    assert revised.publication == 2 and {d.kind for d in revised.decisions} == {
        "reward", "deduction", "improvement_plan"}
    ledger, settlement = s.settle(before, revised)
    [ending] = settlement.entries
    assert (ending.kind, ending.entry, ending.reverses) == (
        "reassignment_review", "cancellation", "t:2026-11:c:reassignment_review:p1")
    assert ("revision 2, after the correction of 2026-10 (publication 2: scores keyed for the"
            " wrong agent)") in ending.reason
    assert ledger.obligation("reward", "a") is not None  # the rest stands, untouched
    assert ledger.endings["t:2026-11:c:reassignment_review:p1"] == ending
    month._add(revised)
    assert month.state is not None and month.state.revisions == 1
    # the same again records nothing
    assert _revise(month, {}) == []
    # and a streak that comes back opens a review again, saying why
    [back] = _revise(month, {"c": 2})
    _, reopened = s.settle(ledger, back)
    [grant] = reopened.entries
    assert grant.entry == "grant" and "opened by revision 3" in grant.reason


def test_a_decided_review_that_no_longer_holds_is_a_basis_change_not_a_cancellation() -> None:
    month = Month()
    month.publish({"a": 90, "b": 80, "c": 70}, previous={"c": 2})
    [revised] = _revise(month, {})
    assert isinstance(revised, c.ConsequencesRevised)
    review = "t:2026-11:c:reassignment_review:p1"
    _, settlement = s.settle(month.ledger, revised, decided={review})
    [ending] = settlement.entries
    assert (ending.entry, ending.initial_status) == ("basis_change", "basis_change")
    assert "the decision stands" in ending.reason
    assert dict(settlement.ended) == {review: "basis_changed"}


def test_a_month_not_published_is_not_revised() -> None:
    month = Month()
    assert _revise(month, {"c": 2}) == []
    month.publish({"a": 90, "b": 80, "c": 70})
    month._add(c.CycleReopened(team_id="t", period="2026-11", reopened_at=PUBLISHED,
                               reason="recheck"))
    assert _revise(month, {"c": 2}) == []
