"""Held aggregates: a load folds only the events after the held version, and catches up with
events another process appended, so replicas with different caches decide on the same state."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime

import pytest

from service.commands.base import Caller, execute, to_new
from service.context import ServiceContext, stream_states
from service.domain import directory as d
from service.domain.errors import NotFound
from service.domain.events import DomainEvent
from service.queries.cycles import evaluation_reads
from service.queries.directory import find_agent
from service.queries.streams import load, read_versions
from service.store.database import Database
from service.store.event_store import append
from tests import conftest

NOW = datetime(2026, 11, 3, 9, 15, tzinfo=UTC)
META = {"actor": {"subject": "tester", "role": "admin", "key_id": None}}


async def test_a_held_state_folds_only_new_events_and_sees_other_writers(
    db: Database, uid: str
) -> None:
    stream = d.agent_stream(f"a-{uid}")
    folded: list[int] = []

    def counting_fold(state: d.Agent | None, events: Sequence[DomainEvent]) -> d.Agent | None:
        folded.append(len(events))
        for e in events:
            state = d.evolve_agent(state, e)
        return state

    async def put(state: d.Agent | None, version: int, name: str) -> None:
        cmd = d.PutAgent(agent_id=f"a-{uid}", name=name, team_id=f"t-{uid}")
        async with db.connection() as conn:
            await append(conn, stream, to_new(d.decide_put_agent(state, cmd, NOW)),
                         expected_version=version, metadata=META, recorded_at=NOW)

    mine, theirs = stream_states(), stream_states()
    await put(None, 0, "First")
    async with db.connection() as conn:
        state, version = await load(conn, stream, d.evolve_agent, counting_fold, states=mine)
        assert state is not None and state.name == "First" and version == 1
        # Another replica, with a cache of its own, renames the agent twice.
        other, other_version = await load(conn, stream, d.evolve_agent, states=theirs)
        await put(other, other_version, "Second")
        other, other_version = await load(conn, stream, d.evolve_agent, states=theirs)
        await put(other, other_version, "Third")
        state, version = await load(conn, stream, d.evolve_agent, counting_fold, states=mine)
        assert state is not None and state.name == "Third" and version == 3
        again, same = await load(conn, stream, d.evolve_agent, counting_fold, states=mine)
        fresh, fresh_version = await load(conn, stream, d.evolve_agent, counting_fold)
    assert again == state and same == 3
    assert fresh == state and fresh_version == 3
    # One event, then the two new ones, then nothing to fold; the uncached load folds all three.
    assert folded == [1, 2, 3]


async def test_a_command_holds_the_state_it_committed(db: Database, uid: str) -> None:
    ctx = ServiceContext(settings=conftest.test_settings(), db=db)
    stream = d.agent_stream(f"a-{uid}")

    def decide(state: d.Agent | None) -> list[DomainEvent]:
        cmd = d.PutAgent(agent_id=f"a-{uid}", name="Held", team_id=f"t-{uid}")
        return list(d.decide_put_agent(state, cmd, NOW))

    state, result = await execute(ctx, Caller(META), stream, d.evolve_agent, decide)
    assert result is not None and state is not None
    # The next command or read starts from the committed state: no event to read back.
    assert ctx.states.get((stream, d.evolve_agent, None)) == (state, result.version)
    async with db.connection() as conn:
        fresh, version = await load(conn, stream, d.evolve_agent)
    assert (fresh, version) == (state, result.version)


async def test_several_streams_read_in_one_round_trip_see_other_writers(
    db: Database, uid: str
) -> None:
    # What PUT evaluation checks: the team and the agent, read together (with the month), each
    # from the state held for it, catching up with events another process appended meanwhile.
    ctx = ServiceContext(settings=conftest.test_settings(), db=db)
    team_id, agent_id, absent = f"t-{uid}", f"a-{uid}", f"nobody-{uid}"
    async with db.connection() as conn:
        await append(conn, d.team_stream(team_id), to_new(d.decide_put_team(
            None, d.PutTeam(team_id, "Team", manager_ids=("m-1",)))),
            expected_version=0, metadata=META, recorded_at=NOW)
    cmd = d.PutAgent(agent_id=agent_id, name="First", team_id=team_id)
    await execute(ctx, Caller(META), d.agent_stream(agent_id), d.evolve_agent,
                  lambda state: list(d.decide_put_agent(state, cmd, NOW)))
    team, agent, month, _ = await evaluation_reads(ctx, team_id, "2026-11", agent_id)
    assert month == (None, 0)
    assert team.manager_ids == ("m-1",) and agent is not None and agent.name == "First"
    async with db.connection() as conn:  # another process renames the agent
        await append(conn, d.agent_stream(agent_id), to_new(d.decide_put_agent(
            agent, d.PutAgent(agent_id=agent_id, name="Second", team_id=team_id), NOW)),
            expected_version=1, metadata=META, recorded_at=NOW)
    team_again, renamed, _, _ = await evaluation_reads(ctx, team_id, "2026-11", agent_id)
    assert team_again == team and renamed is not None and renamed.name == "Second"
    assert renamed == await find_agent(ctx, agent_id)
    assert (await evaluation_reads(ctx, team_id, "2026-11", absent))[1] is None
    with pytest.raises(NotFound):
        await evaluation_reads(ctx, absent, "2026-11", agent_id)


def _renamer(uid: str, decided_on: list[str | None]
             ) -> Callable[[str], Callable[[d.Agent | None], list[DomainEvent]]]:
    """Return rename(name): a decision that renames the agent and records the name it decided on."""
    def rename(name: str) -> Callable[[d.Agent | None], list[DomainEvent]]:
        def decide(state: d.Agent | None) -> list[DomainEvent]:
            decided_on.append(state.name if state is not None else None)
            cmd = d.PutAgent(agent_id=f"a-{uid}", name=name, team_id=f"t-{uid}")
            return list(d.decide_put_agent(state, cmd, NOW))
        return decide
    return rename


async def _rename_elsewhere(db: Database, uid: str, name: str, version: int) -> None:
    """Rename the agent as another process would: its own read of the stream and append."""
    stream = d.agent_stream(f"a-{uid}")
    async with db.connection() as conn:
        state, _ = await load(conn, stream, d.evolve_agent)
        await append(conn, stream, to_new(d.decide_put_agent(state, d.PutAgent(
            agent_id=f"a-{uid}", name=name, team_id=f"t-{uid}"), NOW)),
            expected_version=version, metadata=META, recorded_at=NOW)


async def test_a_command_on_a_state_read_before_another_writer_decides_again(
    db: Database, uid: str
) -> None:
    # PUT evaluation decides on the month read with the team and the agent: if another writer
    # appended since, the append refuses that version and the command decides on the stream
    # read again, so neither write is lost.
    ctx = ServiceContext(settings=conftest.test_settings(), db=db)
    stream = d.agent_stream(f"a-{uid}")
    decided_on: list[str | None] = []
    rename = _renamer(uid, decided_on)

    await execute(ctx, Caller(META), stream, d.evolve_agent, rename("First"))
    [read] = await read_versions(ctx, (stream, d.evolve_agent))
    assert read[0] is not None and read[0].name == "First" and read[1] == 1
    await _rename_elsewhere(db, uid, "Second", 1)  # another process renames it meanwhile
    decided_on.clear()
    state, result = await execute(ctx, Caller(META), stream, d.evolve_agent, rename("Third"),
                                  read=read)
    # Decided on what was read (no read of the stream), refused, decided again on "Second".
    assert decided_on == ["First", "Second"]
    assert result is not None and result.version == 3
    assert state is not None and state.name == "Third"
    async with db.connection() as conn:
        fresh, version = await load(conn, stream, d.evolve_agent)
    assert (fresh, version) == (state, 3)


async def test_a_command_decides_on_the_state_it_holds_and_again_once_another_wrote(
    db: Database, uid: str
) -> None:
    # A command of a process that holds the stream's state decides on it without reading the
    # stream; the append refuses a state another process wrote past, and a decision of "no
    # change" on a held state is taken again on the stream as read, so neither write is lost
    # and no answer comes from a state that is not current.
    ctx = ServiceContext(settings=conftest.test_settings(), db=db)
    stream = d.agent_stream(f"a-{uid}")
    decided_on: list[str | None] = []
    rename = _renamer(uid, decided_on)

    await execute(ctx, Caller(META), stream, d.evolve_agent, rename("First"))
    decided_on.clear()
    state, result = await execute(ctx, Caller(META), stream, d.evolve_agent, rename("Second"))
    assert decided_on == ["First"]  # the held state, written past at once
    assert result is not None and result.version == 2
    await _rename_elsewhere(db, uid, "Third", 2)
    decided_on.clear()
    state, result = await execute(ctx, Caller(META), stream, d.evolve_agent, rename("Fourth"))
    # Decided on the held "Second", refused at version 2, decided again on "Third" as read.
    assert decided_on == ["Second", "Third"]
    assert result is not None and result.version == 4
    assert state is not None and state.name == "Fourth"
    await _rename_elsewhere(db, uid, "Fifth", 4)
    decided_on.clear()
    state, result = await execute(ctx, Caller(META), stream, d.evolve_agent, rename("Fourth"))
    # "No change" on the held "Fourth" is not the answer: "Fifth" is, so it is renamed back.
    assert decided_on == ["Fourth", "Fifth"]
    assert result is not None and result.version == 6
    assert state is not None and state.name == "Fourth"
    async with db.connection() as conn:
        fresh, version = await load(conn, stream, d.evolve_agent)
    assert (fresh, version) == (state, 6)
