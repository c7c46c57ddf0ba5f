"""Rank a team's composite scores: standard competition ranking (1, 2, 2, 4), best first."""

from __future__ import annotations

import math
from collections.abc import Mapping

from pydantic import BaseModel, ConfigDict


class RankEntry(BaseModel):
    """An agent's place in a ranking.

    ``places`` are the positions a tied group occupies together: in 1, 2, 2, 4 both agents at
    rank 2 occupy places 2 to 3. An untied agent's places are (rank, rank).
    """

    model_config = ConfigDict(frozen=True)

    agent_id: str
    score: float
    rank: int
    tied: bool
    places: tuple[int, int]


def rank(scores: Mapping[str, float]) -> list[RankEntry]:
    """Rank agents by score, best first; equal scores share a rank, listed by agent_id."""
    if any(math.isnan(score) for score in scores.values()):
        raise ValueError("a score to rank must be a number, not NaN")
    ordered = sorted(scores.items(), key=lambda item: (-item[1], item[0]))
    entries: list[RankEntry] = []
    start = 0
    while start < len(ordered):
        score = ordered[start][1]
        end = start
        while end < len(ordered) and ordered[end][1] == score:
            end += 1
        # Everyone above this group is strictly better, so the group's rank is one past them.
        places = (start + 1, end)
        entries.extend(
            RankEntry(
                agent_id=agent_id, score=score, rank=start + 1, tied=end - start > 1, places=places
            )
            for agent_id, _ in ordered[start:end]
        )
        start = end
    return entries
