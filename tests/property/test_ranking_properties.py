"""Properties of a team's ranking: scored by score_roster (as a close does) and ranked.

tests/unit/test_ranking.py checks rank() itself (1 + the number strictly better, places, ties
listed by agent id, a raised score never ranks lower). These go through the whole path a close
takes, evaluations and KPI values to rank, and add the invariants rank() owes a team.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import UTC, datetime

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from service.domain.cycle import Cycle, EvaluationSubmitted, FrozenResult, RosterEntry, score_roster
from service.domain.ranking import rank
from service.domain.scheme import Scheme
from tests.property.strategies import Inputs, improvement, inputs, schemes

AT = datetime(2026, 11, 28, tzinfo=UTC)


def close(scheme: Scheme, team: dict[str, Inputs]) -> dict[str, FrozenResult]:
    """Score and rank a team's month as a close does (missing evaluations left unscored)."""
    evaluations = {}
    for agent, month in team.items():
        for role, scores in month.ratings.items():
            rater = agent if role == "self" else f"{role}-rater"
            evaluations[(agent, role, rater)] = EvaluationSubmitted(
                agent_id=agent, rater_role=role, rater_id=rater, scores=dict(scores),
                revision=1, submitted_at=AT)
    cycle = Cycle("t", "2026-11", scheme.scheme_id, scheme.version, AT, AT,
                  evaluations=evaluations)
    roster = [RosterEntry(agent_id=a, name=a, position=None, kpis=dict(m.kpis))
              for a, m in team.items()]
    results, _ = score_roster(cycle, scheme, roster, None)
    return {r.agent_id: r for r in results}


@st.composite
def teams(draw: st.DrawFn, *, complete: bool = True) -> tuple[Scheme, dict[str, Inputs]]:
    """Draw a scheme and a team of 1 to 8 agents' months under it."""
    scheme = draw(schemes())
    size = draw(st.integers(1, 8))
    team = {f"a{i}": draw(inputs(scheme, complete=complete)) for i in range(size)}
    return scheme, team


@settings(deadline=None, max_examples=200)
@given(data=st.data())
def test_better_inputs_never_rank_lower_and_lift_nobody_else(data: st.DataObject) -> None:
    # Given a team and one agent with a rank
    scheme, team = data.draw(teams())
    before = close(scheme, team)
    ranked = sorted(a for a, r in before.items() if r.rank is not None)
    assume(ranked)
    agent = data.draw(st.sampled_from(ranked))
    # When one of that agent's ratings goes up or a KPI value moves the better way
    better = data.draw(improvement(scheme, team[agent]))
    after = close(scheme, {**team, agent: better})
    # Then the agent's rank number does not go up (1 is best), and nobody else's goes down
    assert after[agent].rank is not None and before[agent].rank is not None
    assert after[agent].rank <= before[agent].rank
    for other, result in after.items():
        if other != agent and result.rank is not None:
            assert before[other].rank is not None and result.rank >= before[other].rank


@settings(deadline=None)
@given(data=st.data())
def test_agents_with_equal_inputs_tie(data: st.DataObject) -> None:
    # Given a team where two agents had exactly the same month
    scheme, team = data.draw(teams())
    twin = data.draw(st.sampled_from(sorted(team)))
    team["twin"] = team[twin]
    results = close(scheme, team)
    a, b = results[twin], results["twin"]
    # Then they score the same, share a rank and the places their group occupies
    assert a.score.composite == b.score.composite
    assert (a.rank, a.places) == (b.rank, b.places)
    if a.rank is not None:
        assert a.tied and b.tied


@settings(deadline=None)
@given(data=st.data())
def test_ranks_follow_the_composites_and_unscored_agents_move_nobody(
    data: st.DataObject,
) -> None:
    # Given a team where some evaluations may be missing (left unscored: no policy yet)
    scheme, team = data.draw(teams(complete=False))
    results = close(scheme, team)
    scored = {a: r.score.composite for a, r in results.items() if r.score.composite is not None}
    # Then exactly the scored agents are ranked, by competition ranking of their composites
    for agent, result in results.items():
        if agent not in scored:
            assert (result.rank, result.places, result.tied) == (None, None, False)
            continue
        composite = scored[agent]
        better = sum(1 for s in scored.values() if s > composite)
        level = sum(1 for s in scored.values() if s == composite)
        assert result.rank == 1 + better
        assert result.places == (1 + better, better + level)
    # and the unscored ones change nothing: the team without them ranks the same
    alone = close(scheme, {a: m for a, m in team.items() if a in scored})
    assert {a: r.rank for a, r in alone.items()} == {
        a: r.rank for a, r in results.items() if a in scored}
    # Results list the ranked best first, then the unranked, each by agent id within a rank
    order = [(r.rank is None, r.rank or 0, r.agent_id) for r in results.values()]
    assert order == sorted(order)


_scores = st.dictionaries(
    st.text(alphabet="abcdef", min_size=1, max_size=3),
    st.floats(0, 100).map(lambda x: round(x, 1)),
    min_size=1, max_size=12,
)


@given(scores=_scores, data=st.data())
def test_ranking_ignores_listing_order_and_order_preserving_rescaling(
    scores: dict[str, float], data: st.DataObject
) -> None:
    reordered = {a: scores[a] for a in data.draw(st.permutations(list(scores)))}
    rescaled = {a: 2 * s + 7 for a, s in scores.items()}
    table = [(e.agent_id, e.rank, e.tied, e.places) for e in rank(scores)]
    assert [(e.agent_id, e.rank, e.tied, e.places) for e in rank(reordered)] == table
    assert [(e.agent_id, e.rank, e.tied, e.places) for e in rank(rescaled)] == table


@given(scores=_scores)
def test_each_tied_group_is_skipped_past_by_its_size(scores: dict[str, float]) -> None:
    entries = rank(scores)
    sizes = Counter(e.rank for e in entries)
    ranks = sorted(sizes)
    # Rank 1 always exists; each next rank is the previous one plus the size of its group
    assert ranks[0] == 1
    for previous, following in itertools.pairwise(ranks):
        assert following == previous + sizes[previous]
    # and every agent takes exactly one of the places 1..n
    assert sum(sizes.values()) == len(scores)
    assert ranks[-1] + sizes[ranks[-1]] - 1 == len(scores)
