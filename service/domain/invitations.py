"""Multi-rater evaluation: peers, subordinates, customers and experts invited per cycle.

The seed names six kinds of evaluator. The agent (self) and the manager rate every agent; the
other four rate only whom a manager invited them to rate, in the role they were invited as.
Invitations are events of the cycle stream (``RaterInvited``), so the evaluation decision checks
them against the same state it appends to. An invitation only ever grows: inviting a rater
again for more agents adds them.

Whether their ratings *count* is the scheme's business: the role's weight (0 in the default
scheme) and, when the role requires training, the rater's training on record at submission.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence, Set
from datetime import datetime
from typing import Literal, Protocol

from service.domain.errors import Conflict, DomainError, FieldError
from service.domain.events import DomainEvent, event
from service.domain.ids import ID_RE, ID_RULE
from service.domain.principal import EXTERNAL_RATER_ROLES
from service.domain.scheme import Scheme

#: Invitation keys: (rater_id, rater_role) -> the agents they may rate in that role.
Invitations = Mapping[tuple[str, str], frozenset[str]]
INVITABLE_ROLES: tuple[str, ...] = ("peer", "subordinate", "customer", "expert")


class Month(Protocol):
    """What the invitation decision reads of a month: ``service.domain.cycle.Cycle`` is one (a
    protocol, so that this module need not import the cycle that folds its events)."""

    @property
    def status(self) -> str: ...

    @property
    def invitations(self) -> Invitations: ...
#: Roles whose raters are people of the team, who must not rate themselves.
_COLLEAGUE_ROLES = frozenset({"peer", "subordinate"})


@event
class RaterInvited(DomainEvent):
    """A manager invited a rater to evaluate agents of the cycle in a rater role."""

    type: Literal["RaterInvited"] = "RaterInvited"
    rater_id: str
    rater_role: str
    agent_ids: tuple[str, ...]
    invited_by: str
    invited_at: datetime


def invite(invitations: Invitations, e: RaterInvited) -> dict[tuple[str, str], frozenset[str]]:
    """Apply an invitation: the rater may rate these agents in this role too."""
    key = (e.rater_id, e.rater_role)
    return {**invitations, key: invitations.get(key, frozenset()) | frozenset(e.agent_ids)}


def is_invited(invitations: Invitations, rater_id: str, rater_role: str, agent_id: str) -> bool:
    """Tell whether a rater may rate an agent in a role."""
    return agent_id in invitations.get((rater_id, rater_role), frozenset())


def needs_invitation(rater_role: str) -> bool:
    """Tell whether evaluations in this role come only from invited raters."""
    return rater_role in EXTERNAL_RATER_ROLES


def decide_invite(
    cycle: Month | None,
    scheme: Scheme,
    *,
    rater_id: str,
    rater_role: str,
    agent_ids: Sequence[str],
    members: Set[str],
    invited_by: str,
    now: datetime,
) -> list[DomainEvent]:
    """Invite a rater for agents of the team while the cycle is open."""
    if cycle is None:
        raise Conflict("no open cycle to invite raters to")
    if cycle.status != "open":
        raise Conflict(f"the cycle is {cycle.status}; raters are invited while it is open",
                       cycle_status=cycle.status)
    problems = []
    if not ID_RE.fullmatch(rater_id):
        problems.append(FieldError("rater_id", ID_RULE))
    if rater_role not in INVITABLE_ROLES:
        problems.append(FieldError("rater_role", f"one of {list(INVITABLE_ROLES)}"))
    elif scheme.role(rater_role) is None:
        problems.append(FieldError(
            "rater_role", f"not a rater role of scheme {scheme.scheme_id} v{scheme.version}"))
    if not agent_ids:
        problems.append(FieldError("agent_ids", "name at least one agent to rate"))
    for i, agent_id in enumerate(agent_ids):
        if agent_id not in members:
            problems.append(FieldError(f"agent_ids[{i}]", f"{agent_id} is not in this team"))
        elif agent_id == rater_id and rater_role in _COLLEAGUE_ROLES:
            problems.append(FieldError(f"agent_ids[{i}]", "a rater cannot rate themselves"))
    if problems:
        raise DomainError("invalid invitation", problems)
    already = cycle.invitations.get((rater_id, rater_role), frozenset())
    new = tuple(a for a in dict.fromkeys(agent_ids) if a not in already)
    if not new:
        return []
    return [RaterInvited(rater_id=rater_id, rater_role=rater_role, agent_ids=new,
                         invited_by=invited_by, invited_at=now)]
