"""Properties of score_agent over random valid schemes and random months.

tests/unit/test_scoring.py holds the worked examples and the attainment properties; these are
the composite's: a weighted mean within 0..100, monotone in every input, indifferent to the
order inputs arrive in, and dropping what has no data by re-normalising the rest.
"""

from __future__ import annotations

import math

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.domain.scheme import Criterion, RaterRole, Scheme
from service.domain.scoring import AgentScore, MissingRolesPolicy, score_agent
from tests.property.strategies import Inputs, improvement, inputs, measured, schemes

#: Composites are rounded to 4 decimals, so two routes to the same number may differ by one
#: unit in the last place.
ROUNDING = 1e-4 + 1e-9
POLICIES: list[MissingRolesPolicy | None] = [None, "zero", "renormalize"]


def score(
    scheme: Scheme, given: Inputs, policy: MissingRolesPolicy | None = None
) -> AgentScore:
    """Score the inputs under the scheme."""
    return score_agent(scheme, None, given.kpis, given.ratings, missing_roles_policy=policy)


def _sums_to_one(weights: list[float]) -> bool:
    return math.isclose(math.fsum(weights), 1.0, abs_tol=1e-9)


# --- weights --------------------------------------------------------------------------------


@settings(deadline=None)
@given(data=st.data())
def test_the_composite_is_a_weighted_mean_of_the_role_scores_within_0_and_100(
    data: st.DataObject,
) -> None:
    scheme = data.draw(schemes())
    month = data.draw(inputs(scheme, complete=data.draw(st.booleans())))
    policy = data.draw(st.sampled_from(POLICIES))
    result = score(scheme, month, policy)
    if result.composite is None:
        # Only a missing evaluation left unresolved, or nothing at all to count, has none.
        assert (result.missing_roles and policy is None) or all(
            r.effective_weight == 0 or r.score is None for r in result.roles.values())
        return
    assert 0.0 <= result.composite <= 100.0
    counted = [r for r in result.roles.values() if r.effective_weight > 0]
    assert _sums_to_one([r.effective_weight for r in counted])
    scores = [r.score or 0.0 for r in counted]
    assert abs(result.composite - math.fsum(
        r.effective_weight * (r.score or 0.0) for r in counted)) <= ROUNDING
    assert min(scores) - ROUNDING <= result.composite <= max(scores) + ROUNDING
    for role in result.roles.values():
        if role.score is None or role.status != "scored":
            continue
        assert 0.0 <= role.score <= 100.0
        assert _sums_to_one([c.effective_weight for c in role.criteria.values()
                             if c.score is not None and c.weight > 0]
                            or [1.0])
    wp = result.work_performance
    if wp is not None and wp.computed is not None:
        kept = [k for k in wp.kpis.values() if not k.dropped]
        assert _sums_to_one([k.effective_weight for k in kept])
        assert all(0.0 <= (k.attainment or 0.0) <= 100.0 for k in kept)
        assert all(k.effective_weight == 0.0 for k in wp.kpis.values() if k.dropped)


@settings(deadline=None)
@given(data=st.data(), level=st.floats(0, 100))
def test_inputs_all_at_one_level_score_that_level(data: st.DataObject, level: float) -> None:
    # Given every rating at level % of the scale and every KPI level % of the way from its
    # floor to its target
    scheme = data.draw(schemes())
    ratings = {r.role: dict.fromkeys(scheme.form(r.role), level / 100 * scheme.scale_max)
               for r in scheme.roles}
    kpis: dict[str, float | None] = {
        k.name: k.floor + level / 100 * (k.target - k.floor)  # type: ignore[operator]
        for k in measured(scheme)
    }
    # Then the composite, a weighted mean of them all, is that level
    result = score(scheme, Inputs(kpis=kpis, ratings=ratings))
    assert result.composite is not None
    assert abs(result.composite - level) <= ROUNDING


# --- monotonicity ---------------------------------------------------------------------------


@settings(deadline=None, max_examples=300)
@given(data=st.data())
def test_a_better_rating_or_kpi_value_never_lowers_the_composite(data: st.DataObject) -> None:
    # Given any month (evaluations possibly missing, under any missing-role policy)
    scheme = data.draw(schemes())
    before = data.draw(inputs(scheme, complete=data.draw(st.booleans())))
    policy = data.draw(st.sampled_from(POLICIES))
    # When one rating goes up, or one KPI value moves in its better direction
    after = data.draw(improvement(scheme, before))
    old, new = score(scheme, before, policy), score(scheme, after, policy)
    # Then whether there is a composite does not change, and it does not go down
    assert (old.composite is None) == (new.composite is None)
    if old.composite is not None and new.composite is not None:
        assert new.composite >= old.composite
    assert old.work_performance is not None and new.work_performance is not None
    if old.work_performance.score is not None:
        assert new.work_performance.score is not None
        assert new.work_performance.score >= old.work_performance.score - 1e-9


# --- ties -----------------------------------------------------------------------------------


@settings(deadline=None)
@given(data=st.data())
def test_equal_inputs_in_any_order_score_exactly_equal(data: st.DataObject) -> None:
    # Given the same month twice, its KPIs, roles and ratings listed in different orders
    scheme = data.draw(schemes())
    month = data.draw(inputs(scheme))
    kpi_order = data.draw(st.permutations(list(month.kpis)))
    role_order = data.draw(st.permutations(list(month.ratings)))
    shuffled = Inputs(
        kpis={k: month.kpis[k] for k in kpi_order},
        ratings={r: {n: month.ratings[r][n]
                     for n in data.draw(st.permutations(list(month.ratings[r])))}
                 for r in role_order},
    )
    # Then the composites are identical to the last bit, so the two agents would tie
    assert score(scheme, shuffled).composite == score(scheme, month).composite


# --- no data --------------------------------------------------------------------------------


def _without_kpi(scheme: Scheme, name: str) -> Scheme:
    kept = [k for k in scheme.kpis if k.name != name]
    total = math.fsum(k.weight for k in kept)
    return scheme.model_copy(update={
        "kpis": tuple(k.model_copy(update={"weight": k.weight / total}) for k in kept)})


@settings(deadline=None)
@given(data=st.data())
def test_a_kpi_without_data_drops_out_and_the_other_weights_are_renormalised(
    data: st.DataObject,
) -> None:
    scheme = data.draw(schemes())
    assume(measured(scheme))
    month = data.draw(inputs(scheme))
    kpi = data.draw(st.sampled_from(measured(scheme)))
    rest = math.fsum(k.weight for k in scheme.kpis if k.name != kpi.name
                     and (k.kind == "rated" or month.kpis[k.name] is not None))
    assume(rest > 0)
    # When that KPI has no data
    result = score(scheme, month.with_kpi(kpi.name, None))
    # Then it counts for nothing...
    assert result.work_performance is not None
    dropped = result.work_performance.kpis[kpi.name]
    assert dropped.dropped and dropped.effective_weight == 0.0 and dropped.attainment is None
    # ...and the month scores as under a scheme without it, its weight shared pro rata
    reduced = _without_kpi(scheme, kpi.name)
    kpis = {k: v for k, v in month.kpis.items() if k != kpi.name}
    expected = score(reduced, Inputs(kpis=kpis, ratings=month.ratings))
    assert result.composite is not None and expected.composite is not None
    assert abs(result.composite - expected.composite) <= ROUNDING


@settings(deadline=None)
@given(data=st.data())
def test_no_data_none_nan_and_absent_are_the_same(data: st.DataObject) -> None:
    scheme = data.draw(schemes())
    assume(measured(scheme))
    month = data.draw(inputs(scheme))
    kpi = data.draw(st.sampled_from(measured(scheme))).name
    as_none = score(scheme, month.with_kpi(kpi, None))
    as_nan = score(scheme, month.with_kpi(kpi, math.nan))
    absent = score(scheme, Inputs(kpis={k: v for k, v in month.kpis.items() if k != kpi},
                                  ratings=month.ratings))
    assert as_none.composite == as_nan.composite == absent.composite
    assert as_none.missing_roles == as_nan.missing_roles == absent.missing_roles


def _without_criterion(scheme: Scheme, role: str, name: str) -> Scheme:
    roles = []
    for r in scheme.roles:
        if r.role == role:
            kept = [c for c in r.criteria if c.name != name]
            total = math.fsum(c.weight for c in kept)
            r = RaterRole(role=r.role, weight=r.weight, criteria=tuple(
                Criterion(name=c.name, weight=c.weight / total, source=c.source) for c in kept))
        roles.append(r)
    return scheme.model_copy(update={"roles": tuple(roles)})


@settings(deadline=None)
@given(data=st.data())
def test_without_any_kpi_data_work_performance_drops_out_of_its_role(
    data: st.DataObject,
) -> None:
    # Given a month with no KPI data at all (no measured values, no report ratings)
    scheme = data.draw(schemes())
    month = data.draw(inputs(scheme))
    rated = {k.name for k in scheme.kpis if k.kind == "rated"}
    empty = Inputs(kpis=dict.fromkeys(month.kpis),
                   ratings={r: {n: v for n, v in s.items() if n not in rated}
                            for r, s in month.ratings.items()})
    manager = scheme.role("manager")
    assert manager is not None
    others = math.fsum(c.weight for c in manager.criteria if c.source == "rated")
    assume(others > 0)
    result = score(scheme, empty)
    # Then work_performance has no score and the manager's other criteria share its weight
    assert result.work_performance is not None and result.work_performance.score is None
    criterion = result.roles["manager"].criteria["work_performance"]
    assert criterion.score is None and criterion.effective_weight == 0.0
    reduced = _without_criterion(scheme, "manager", "work_performance")
    expected = score(reduced, empty)
    assert result.composite is not None and expected.composite is not None
    assert abs(result.composite - expected.composite) <= ROUNDING


@settings(deadline=None)
@given(data=st.data())
def test_a_missing_role_renormalised_is_the_scheme_without_it(data: st.DataObject) -> None:
    # Given a month with at least one evaluation in and at least one missing
    scheme = data.draw(schemes())
    month = data.draw(inputs(scheme, complete=False))
    assume(0 < len(month.ratings) < len(scheme.roles))
    unresolved = score(scheme, month)
    zero = score(scheme, month, "zero")
    renormalised = score(scheme, month, "renormalize")
    # Then it is provisional until a policy decides; scoring the missing as 0 never gives more
    # than dropping them; dropping them equals a scheme without those roles, weights shared
    assert unresolved.composite is None and unresolved.missing_roles
    assert zero.composite is not None
    if renormalised.composite is None:  # what was submitted scores nothing (no KPI data...)
        return
    assert zero.composite <= renormalised.composite + ROUNDING
    # (A role can be missing with its evaluation in: a form with nothing on it but KPI
    # attainment, in a month without KPI data, has no score either.)
    present = [r for r in scheme.roles if r.role not in renormalised.missing_roles]
    total = math.fsum(r.weight for r in present)
    reduced = scheme.model_copy(update={"roles": tuple(
        r.model_copy(update={"weight": r.weight / total}) for r in present)})
    expected = score(reduced, Inputs(kpis=month.kpis, ratings={
        r.role: month.ratings[r.role] for r in present}))
    assert expected.composite is not None
    assert abs(renormalised.composite - expected.composite) <= ROUNDING
