"""Standard competition ranking (1, 2, 2, 4) with the places a tied group occupies."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.ranking import rank


def _table(scores: dict[str, float]) -> list[tuple[str, int, bool, tuple[int, int]]]:
    return [(e.agent_id, e.rank, e.tied, e.places) for e in rank(scores)]


def test_ties_share_a_rank_and_the_next_rank_is_skipped() -> None:
    # Given four agents, two of them level (listed out of order on purpose)
    scores = {"d": 70.0, "c": 80.0, "a": 90.0, "b": 80.0}
    # Then the ranking is 1, 2, 2, 4; the pair occupies places 2 to 3; ties listed by agent_id
    assert _table(scores) == [
        ("a", 1, False, (1, 1)),
        ("b", 2, True, (2, 3)),
        ("c", 2, True, (2, 3)),
        ("d", 4, False, (4, 4)),
    ]
    assert [e.score for e in rank(scores)] == [90.0, 80.0, 80.0, 70.0]


def test_everyone_tied_shares_rank_one_and_every_place() -> None:
    assert _table({"z": 50.0, "x": 50.0, "y": 50.0}) == [
        ("x", 1, True, (1, 3)),
        ("y", 1, True, (1, 3)),
        ("z", 1, True, (1, 3)),
    ]


def test_a_single_agent_is_ranked_first_and_untied() -> None:
    assert _table({"solo": 12.5}) == [("solo", 1, False, (1, 1))]


def test_an_empty_team_has_an_empty_ranking() -> None:
    assert rank({}) == []


def test_ties_at_both_ends() -> None:
    assert _table({"a": 9.0, "b": 9.0, "c": 5.0, "d": 1.0, "e": 1.0}) == [
        ("a", 1, True, (1, 2)),
        ("b", 1, True, (1, 2)),
        ("c", 3, False, (3, 3)),
        ("d", 4, True, (4, 5)),
        ("e", 4, True, (4, 5)),
    ]


def test_a_nan_score_cannot_be_ranked() -> None:
    with pytest.raises(ValueError, match="NaN"):
        rank({"a": 1.0, "b": float("nan")})


_scores = st.dictionaries(
    st.text(alphabet="abcdefgh", min_size=1, max_size=3),
    st.floats(min_value=0, max_value=100, allow_nan=False).map(lambda x: round(x, 1)),
    min_size=1,
    max_size=12,
)


@given(scores=_scores, data=st.data())
def test_raising_a_score_never_lowers_the_rank(
    scores: dict[str, float], data: st.DataObject
) -> None:
    # Given any team, one of its agents, and a raise for that agent
    agent = data.draw(st.sampled_from(sorted(scores)))
    raise_by = data.draw(st.floats(min_value=0, max_value=100, allow_nan=False))
    before = {e.agent_id: e.rank for e in rank(scores)}[agent]
    # When that agent's score goes up
    after = {e.agent_id: e.rank for e in rank(scores | {agent: scores[agent] + raise_by})}[agent]
    # Then its rank number does not go up (1 is best)
    assert after <= before


@given(scores=_scores)
def test_rank_is_one_plus_the_number_strictly_better(scores: dict[str, float]) -> None:
    entries = rank(scores)
    assert sorted(e.agent_id for e in entries) == sorted(scores)
    for e in entries:
        assert e.rank == 1 + sum(1 for s in scores.values() if s > e.score)
        level = sum(1 for s in scores.values() if s == e.score)
        assert e.places == (e.rank, e.rank + level - 1)
        assert e.tied == (level > 1)
    # best first, ties by agent_id
    assert [(-e.score, e.agent_id) for e in entries] == sorted(
        (-e.score, e.agent_id) for e in entries
    )
