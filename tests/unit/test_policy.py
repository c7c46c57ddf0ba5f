"""Who may do what, as a table written from the brief (api.md "Authentication and roles",
domain.md "Fair months"): role x action x scope -> allowed.

Each row is read off the documents, not the code: the role table in api.md ("admin:
everything"; "manager: teams whose manager_ids include the caller's subject"; "agent: read own
KPIs, scorecard and sanctions; submit own self-evaluation"; "rater: ... as peer, subordinate,
customer or expert"; "ingest: POST /v1/metrics only, for the source named on the key";
"reader: every GET, nothing else") and the fair-months rule "nobody judges their own case".
"""

from __future__ import annotations

import pytest

from service.domain import policy
from service.domain.conflicts import ConflictOfInterest, ensure_not_own_case
from service.domain.errors import Text
from service.domain.principal import ROLES, Principal

TEAM_MANAGERS = ("m-1", "m-2")
ADMIN = Principal("hr", "admin")
READER = Principal("bi", "reader")
MANAGER = Principal("m-1", "manager")
OTHER_MANAGER = Principal("m-9", "manager")
AGENT = Principal("a-1", "agent")
OTHER_AGENT = Principal("a-2", "agent")
RATER = Principal("r-1", "rater")
INGEST = Principal("apikey:k", "ingest", "k", "chat")

# -- which roles a route admits -----------------------------------------------------------------

#: (route's listed roles, method, role, admitted)
ROUTE_ROWS = [
    # admin: everything, whatever a route lists.
    ((), "GET", "admin", True),
    ((), "POST", "admin", True),
    (("manager",), "DELETE", "admin", True),
    # reader: every GET, nothing else, even where a route would list it.
    ((), "GET", "reader", True),
    (("manager",), "HEAD", "reader", True),
    (("manager", "reader"), "POST", "reader", False),
    (("manager",), "PUT", "reader", False),
    # the listed roles, on any method; the others not.
    (("manager",), "POST", "manager", True),
    (("manager",), "POST", "agent", False),
    (("manager", "agent"), "GET", "agent", True),
    (("manager", "agent"), "GET", "rater", False),
    (("manager", "agent", "rater"), "PUT", "rater", True),
    # ingest: only where a route lists it (POST /v1/metrics alone does).
    (("ingest",), "POST", "ingest", True),
    (("manager", "agent"), "GET", "ingest", False),
]


@pytest.mark.parametrize(("roles", "method", "role", "admitted"), ROUTE_ROWS)
def test_route_admits(roles: tuple[str, ...], method: str, role: str, admitted: bool) -> None:
    assert policy.route_admits(roles, role, method) is admitted


def test_a_route_that_serves_no_business_data_keeps_readers_out() -> None:
    # The key listing is a GET readers may not make (api.md: reader reads business data).
    assert not policy.route_admits(("manager",), "reader", "GET", reads=False)
    assert policy.route_admits(("manager",), "admin", "GET", reads=False)


# -- scopes: role x action x scope -> allowed ----------------------------------------------------

#: (principal, action, scope, allowed); "own team" is a team whose manager_ids name the caller.
SCOPE_ROWS = [
    (ADMIN, "manage", "any team", True),
    (READER, "manage", "any team", True),  # reads only: route_admits keeps readers off writes
    (MANAGER, "manage", "own team", True),
    (OTHER_MANAGER, "manage", "own team", False),
    (Principal("m-1", "agent"), "manage", "own team", False),  # the role, not only the id
    (Principal("m-1", "rater"), "manage", "own team", False),
    (AGENT, "see agent", "self", True),
    (OTHER_AGENT, "see agent", "self", False),
    (MANAGER, "see agent", "own team", True),
    (OTHER_MANAGER, "see agent", "own team", False),
    (ADMIN, "see agent", "any team", True),
    (READER, "see agent", "any team", True),
    (RATER, "see agent", "any team", False),
    (INGEST, "see agent", "any team", False),
    (AGENT, "act as agent", "self", True),
    (OTHER_AGENT, "act as agent", "self", False),
    (Principal("a-1", "manager"), "act as agent", "self", False),
    (ADMIN, "act as agent", "self", True),
]


def _decide(principal: Principal, action: str) -> bool:
    if action == "manage":
        return policy.may_manage(principal, TEAM_MANAGERS)
    if action == "see agent":
        return policy.may_see_agent(principal, "a-1", TEAM_MANAGERS)
    if action == "act as agent":
        return policy.may_act_as_agent(principal, "a-1")
    raise AssertionError(action)


@pytest.mark.parametrize(("principal", "action", "scope", "allowed"), SCOPE_ROWS,
                         ids=[f"{p.role}:{p.subject}-{a}-{s}" for p, a, s, _ in SCOPE_ROWS])
def test_scopes(principal: Principal, action: str, scope: str, allowed: bool) -> None:
    assert _decide(principal, action) is allowed


def test_a_team_is_seen_by_its_agents_and_managers() -> None:
    assert policy.may_see_team(AGENT, TEAM_MANAGERS, member=True)
    assert not policy.may_see_team(AGENT, TEAM_MANAGERS, member=False)
    assert policy.may_see_team(MANAGER, TEAM_MANAGERS, member=False)
    assert not policy.may_see_team(OTHER_MANAGER, TEAM_MANAGERS, member=False)
    # Membership is an agent's: a rater who happens to be listed is not let in by it.
    assert not policy.may_see_team(RATER, TEAM_MANAGERS, member=True)
    assert policy.may_see_team(READER, TEAM_MANAGERS, member=False)


def test_contact_details_are_the_persons_own() -> None:
    assert policy.may_reach_person(Principal("p-1", "rater"), "p-1")
    assert not policy.may_reach_person(Principal("p-2", "manager"), "p-1")
    assert policy.may_reach_person(ADMIN, "p-1")
    assert policy.may_set_email(ADMIN)
    assert not policy.may_set_email(Principal("p-1", "agent"))  # not even one's own


def test_ingest_pushes_only_for_its_own_source() -> None:
    assert policy.may_push_for(INGEST, "chat")
    assert not policy.may_push_for(INGEST, "phone")
    assert policy.may_push_for(ADMIN, "phone")


# -- evaluations -----------------------------------------------------------------------------

#: (principal, rater role, agent rated, allowed)
RATING_ROWS = [
    (AGENT, "self", "a-1", True),
    (OTHER_AGENT, "self", "a-1", False),
    (ADMIN, "self", "a-1", False),  # only the agent's own self-evaluation counts
    (MANAGER, "self", "a-1", False),
    (MANAGER, "manager", "a-1", True),
    (ADMIN, "manager", "a-1", True),
    (RATER, "manager", "a-1", False),
    (AGENT, "manager", "a-2", False),
    *[(RATER, role, "a-1", True) for role in ("peer", "subordinate", "customer", "expert")],
    (AGENT, "peer", "a-2", False),
    (MANAGER, "peer", "a-1", False),
    (ADMIN, "customer", "a-1", True),
    (READER, "manager", "a-1", False),
]


@pytest.mark.parametrize(("principal", "rater_role", "agent_id", "allowed"), RATING_ROWS)
def test_who_rates_as_what(
    principal: Principal, rater_role: str, agent_id: str, allowed: bool
) -> None:
    assert policy.may_rate_as(principal, rater_role, agent_id) is allowed
    if not allowed:
        assert rater_role in str(policy.rating_refusal(principal, rater_role))


def test_nobody_judges_their_own_case() -> None:
    # A playing manager (m-1 is also an agent of the team) may not judge m-1's case...
    assert policy.judges_own_case("m-1", "m-1")
    assert not policy.judges_own_case("m-2", "m-1")
    # ...and the conflict rule asks the policy: the same answer, as a 403 naming who may.
    with pytest.raises(ConflictOfInterest) as caught:
        ensure_not_own_case("m-1", "m-1", Text("decide the appeal of"), team_id="t-1",
                            manager_ids=TEAM_MANAGERS)
    assert "m-2" in str(caught.value)
    ensure_not_own_case("m-2", "m-1", Text("decide the appeal of"), team_id="t-1",
                        manager_ids=TEAM_MANAGERS)


def test_every_role_is_in_the_table() -> None:
    seen = {row[2] for row in ROUTE_ROWS}
    assert seen == set(ROLES)
