"""Who may do what: every authorisation rule of both doors, the JSON API and the pages.

Pure: a principal and the domain's own data (a team's manager ids, an agent id, a source) in,
yes or no out. The doors turn a no into their own answer (the API a 403 problem, a page the same
problem rendered, or a form left out), so a rule changed here changes both at once, and the
permission tests ask these functions what to expect instead of restating them.

The roles (``api.md``, "Authentication and roles"): an admin may do everything; a reader every
read and nothing else; a manager the teams whose ``manager_ids`` name them; an agent their own
data; a rater the evaluations they were invited to give; an ingest credential only pushes
metrics for its own source. Nobody judges their own case (``domain.md``, "Fair months").
"""

from __future__ import annotations

from collections.abc import Collection

from service.domain.errors import Text
from service.domain.principal import EXTERNAL_RATER_ROLES, Principal

#: Methods that only read: a reader's, on every route that serves business data.
SAFE_METHODS = frozenset({"GET", "HEAD"})

# -- routes ----------------------------------------------------------------------------------


def route_admits(roles: Collection[str], role: str, method: str, *, reads: bool = True) -> bool:
    """Tell whether a route that lists ``roles`` admits a principal of ``role`` for ``method``.

    An admin is always admitted. A reader is admitted on every read (GET/HEAD) of a route that
    serves business data (``reads``) and never on a write, whatever the list says.
    """
    if role == "reader":
        return reads and method.upper() in SAFE_METHODS
    return role == "admin" or role in roles


# -- scopes: which data a role reaches -------------------------------------------------------


def unscoped(principal: Principal) -> bool:
    """Tell whether the principal reaches every team's data (admin; reader, on reads only)."""
    # A reader only gets past route_admits on reads, and may read everything.
    return principal.role in ("admin", "reader")


def is_agent(principal: Principal, agent_id: str) -> bool:
    """Tell whether the principal is the agent ``agent_id`` themselves."""
    return principal.role == "agent" and principal.subject == agent_id


def may_manage(principal: Principal, manager_ids: Collection[str]) -> bool:
    """Tell whether the principal may act as a manager of the team with ``manager_ids``."""
    return unscoped(principal) or (
        principal.role == "manager" and principal.subject in manager_ids
    )


def may_act_as_agent(principal: Principal, agent_id: str) -> bool:
    """Tell whether the principal may act on the agent's own behalf (the agent, or unscoped)."""
    return unscoped(principal) or is_agent(principal, agent_id)


def may_see_agent(principal: Principal, agent_id: str, manager_ids: Collection[str]) -> bool:
    """Tell whether the principal may see an agent's data: the agent, or the team's managers."""
    return is_agent(principal, agent_id) or may_manage(principal, manager_ids)


def may_see_team(principal: Principal, manager_ids: Collection[str], *, member: bool) -> bool:
    """Tell whether the principal may see a team: its managers, or an agent who is a member."""
    return (member and principal.role == "agent") or may_manage(principal, manager_ids)


def may_reach_person(principal: Principal, person_id: str) -> bool:
    """Tell whether the principal may read or change how the person ``person_id`` is reached."""
    return unscoped(principal) or principal.subject == person_id


def may_set_email(principal: Principal) -> bool:
    """Tell whether the principal may set a person's email address (an admin only)."""
    return principal.is_admin


def may_push_for(principal: Principal, source: str) -> bool:
    """Tell whether the principal may push metrics for ``source`` (ingest: only its own)."""
    return principal.role != "ingest" or principal.source == source


# -- results --------------------------------------------------------------------------------


def may_see_ranking(principal: Principal, status: str) -> bool:
    """Tell whether the principal may see a team's ranking in this status.

    Agents see it once the month is published (``domain.md``: the open month's live ranking
    would anchor their self-evaluation); everyone the route admits sees it in every status.
    """
    return principal.role != "agent" or status == "published"


def sees_ranking_once_all_released(principal: Principal) -> bool:
    """Tell whether the principal sees a published ranking only once every ranked agent's
    result is released (agents: nobody learns a teammate's result before the teammate)."""
    return principal.role == "agent"


def sees_own_result_only_when_released(principal: Principal) -> bool:
    """Tell whether the principal's scorecards withhold the result until it is released to
    them (agents reading their own: rank, composite and other raters' scores wait)."""
    return principal.role == "agent"


# -- evaluations and one's own case ------------------------------------------------------------


def may_rate_as(principal: Principal, rater_role: str, agent_id: str) -> bool:
    """Tell whether the principal's role may submit an evaluation under ``rater_role``.

    Only the role is checked here; whether a manager manages the team (``may_manage``) or a
    rater was invited is the handler's to check with the domain's data.
    """
    if rater_role == "self":
        # Only the agent's own counts; an admin's was listed beside it as if it did.
        return is_agent(principal, agent_id)
    if principal.is_admin:
        return True
    if rater_role == "manager":
        return principal.role == "manager"
    return principal.role == "rater" and rater_role in EXTERNAL_RATER_ROLES


def rating_refusal(principal: Principal, rater_role: str) -> Text:
    """Say why may_rate_as refused the principal, for the 403 both doors answer."""
    if rater_role == "self":
        return Text("only the agent may submit their own self-evaluation")
    return Text("a %(role)s may not submit a %(rater_role)s evaluation",
                {"role": Text(principal.role), "rater_role": Text(rater_role)})


def judges_own_case(actor_id: str, agent_id: str) -> bool:
    """Tell whether the actor would rate, review or decide the case of the agent they are.

    Identity is the caller's subject compared with the agent id, whatever the role: a
    "playing manager" (a manager who is also an agent of the team) is no exception.
    """
    return actor_id == agent_id
