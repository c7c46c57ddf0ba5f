"""No one judges their own case: the conflict-of-interest rule (``domain.md``, "Fair months").

A person may rate themselves only in the role ``self``. In every other role (manager, peer,
subordinate, customer, expert), and when reviewing an improvement plan, deciding a
reassignment review or deciding an appeal, the person acting must not be the agent the case
concerns. A manager who is also an agent of the team ("playing manager") is judged by another
manager of the team or an admin. Identity is the caller's subject (an API key's subject, a
JWT's ``sub``) compared with the agent id. It holds for every scheme version: it is a defect
fix, not a policy a scheme may choose.

Pure: no I/O.
"""

from __future__ import annotations

from collections.abc import Collection

from service.domain.errors import Forbidden, Text
from service.domain.policy import judges_own_case


class ConflictOfInterest(Forbidden):
    """The caller would rate, review or decide their own case (403)."""

    kind = "conflict-of-interest"


def who_else(team_id: str, manager_ids: Collection[str], agent_id: str) -> Text:
    """Say, in words, who may act on an agent's case instead of the agent."""
    others = sorted(m for m in manager_ids if m != agent_id)
    if others:
        return Text("another manager of team %(team)s (%(others)s) or an admin",
                    {"team": team_id, "others": ", ".join(others)})
    return Text("an admin (team %(team)s has no other manager)", {"team": team_id})


def ensure_not_own_case(
    actor_id: str, agent_id: str, act: Text, *, team_id: str, manager_ids: Collection[str]
) -> None:
    """Refuse (403 conflict-of-interest) when the actor is the agent whose case ``act`` is.

    ``act`` names the act in words ("give the manager evaluation of", "review the improvement
    plan of", "decide the reassignment review of", "decide the appeal of").
    """
    if not judges_own_case(actor_id, agent_id):
        return
    raise ConflictOfInterest(
        "%(actor)s may not %(act)s themselves: nobody judges their own case; %(who)s may do it",
        values={"actor": actor_id, "act": act, "who": who_else(team_id, manager_ids, agent_id)},
        agent_id=agent_id, may_act=[*sorted(m for m in manager_ids if m != agent_id), "admin"],
    )
