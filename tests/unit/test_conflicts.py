"""The conflict-of-interest rule: nobody judges their own case in any role but self."""

from __future__ import annotations

import pytest

from service.api.problems import status_of
from service.domain.conflicts import ConflictOfInterest, ensure_not_own_case, who_else
from service.domain.errors import Text


def test_the_agent_concerned_may_not_act_and_is_told_who_may() -> None:
    with pytest.raises(ConflictOfInterest) as refused:
        ensure_not_own_case("p-1", "p-1", Text("decide the appeal of"), team_id="t-1",
                            manager_ids=["p-1", "m-2"])
    assert status_of(refused.value) == 403 and refused.value.kind == "conflict-of-interest"
    assert "p-1 may not decide the appeal of themselves" in str(refused.value)
    assert "another manager of team t-1 (m-2) or an admin" in str(refused.value)
    assert refused.value.extra["may_act"] == ["m-2", "admin"]


def test_anyone_else_may_act() -> None:
    ensure_not_own_case("m-2", "p-1", Text("review the improvement plan of"), team_id="t-1",
                        manager_ids=["p-1", "m-2"])


def test_a_team_without_another_manager_leaves_an_admin() -> None:
    assert str(who_else("t-1", ["p-1"], "p-1")) == "an admin (team t-1 has no other manager)"
