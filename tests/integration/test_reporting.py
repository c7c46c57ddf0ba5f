"""The reporting schema: documented views over the read models, kept through swaps, and a
read-only role that sees nothing else."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from functools import partial
from typing import Any

import asyncpg
import httpx
import pytest

from service.commands import metrics as metric_commands
from service.domain import metrics as m
from service.projections import checkpoints, kpi_values
from service.projections.base import Projection, Tables
from service.queries.kpis import month_context
from service.store import reporting, reporting_role
from service.store.database import Database
from service.store.event_store import RecordedEvent
from tests.conftest import TestClock as PinnedClock
from tests.conftest import bearer, make_token
from tests.support.raters import train
from tests.support.scenario import ADMIN, make_team

PERIOD = "2026-11"
AT = "2026-11-20T10:00:00+09:00"
PUBLISHED = datetime(2026, 12, 3, 9, 30, tzinfo=UTC)


async def reporting_views(conn: asyncpg.Connection) -> set[str]:
    rows = await conn.fetch("SELECT viewname FROM pg_views WHERE schemaname = 'reporting'")
    return {r["viewname"] for r in rows}


async def all_views_ready(db: Database) -> set[str]:
    """Wait until the app's projections made their read models and so every reporting view."""
    wanted = {v.name for v in reporting.VIEWS}
    async with db.connection() as conn:
        for _ in range(200):
            await reporting.ensure_reporting(conn)
            found = await reporting_views(conn)
            if wanted <= found:
                return found
            await asyncio.sleep(0.05)
    return found


async def test_every_view_exists_and_every_column_is_documented(
    app_client: httpx.AsyncClient, db: Database
) -> None:
    found = await all_views_ready(db)
    assert {v.name for v in reporting.VIEWS} <= found
    async with db.connection() as conn:
        undocumented = await conn.fetch(
            """
            SELECT c.relname, a.attname FROM pg_class c
            JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
            WHERE n.nspname = 'reporting' AND col_description(c.oid, a.attnum) IS NULL
            """
        )
        views_without_comment = await conn.fetch(
            "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            " WHERE n.nspname = 'reporting' AND obj_description(c.oid, 'pg_class') IS NULL"
        )
        # Every view can be read (a typo in a JSON path or a cast shows up here).
        for name in sorted(found):
            await conn.fetch(f"SELECT * FROM reporting.{name} LIMIT 5")
    assert not undocumented, [tuple(r) for r in undocumented]
    assert not views_without_comment
    # Running again changes nothing (and locks nothing): the fingerprints match.
    async with db.connection() as conn:
        assert await reporting.ensure_reporting(conn) == []


async def _post_samples(client: httpx.AsyncClient, uid: str, agent_id: str) -> None:
    samples = [("consultations", 4), ("conversions", 1), ("response_time_seconds", 10.0),
               ("response_time_seconds", 20.5), ("orders", 2), ("paid_orders", 1),
               ("order_amount", 120.5)]
    body = {"source": f"chat-{uid}", "samples": [
        {"id": f"{uid}-{i}", "agent_id": agent_id, "metric": metric, "value": value,
         "occurred_at": AT} for i, (metric, value) in enumerate(samples)]}
    response = await client.post("/v1/metrics", json=body,
                                 headers=bearer(make_token("ingest", source=f"chat-{uid}")))
    assert response.status_code == 200 and response.json()["accepted"] == len(samples)


async def _rows(db: Database, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with db.connection() as conn:
        return [dict(r) for r in await conn.fetch(sql, *args)]


async def _eventually(db: Database, sql: str, *args: Any, count: int) -> list[dict[str, Any]]:
    # A minute, not ten seconds: late in the suite the database holds every earlier test's
    # events, and on a loaded machine a projection's catch-up has been seen to take longer.
    for _ in range(1200):
        rows = await _rows(db, sql, *args)
        if len(rows) >= count:
            return rows
        await asyncio.sleep(0.05)
    return rows


async def _computed(db: Database, sql: str, *args: Any) -> list[dict[str, Any]]:
    """Wait until the KPI history rows have their KPI columns (kpi_values caught up)."""
    for _ in range(1200):
        rows = await _rows(db, sql, *args)
        if rows and all(r["conversion_rate"] is not None for r in rows):
            return rows
        await asyncio.sleep(0.05)
    return rows


async def test_a_published_month_reads_the_same_in_the_views_as_in_the_api(
    app_client: httpx.AsyncClient, db: Database, uid: str, app_clock: PinnedClock
) -> None:
    await all_views_ready(db)
    app_clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    team = await make_team(app_client, uid, 4)
    a, b, c, d = team.agents
    await _post_samples(app_client, uid, a)
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, dict(zip(team.agents, (90, 80, 70, 60), strict=True)))
    app_clock.set(PUBLISHED)
    assert (await team.close(PERIOD)).status_code == 200
    assert (await team.publish(PERIOD)).status_code == 200

    rankings = await _eventually(
        db, "SELECT * FROM reporting.rankings WHERE team_id = $1 AND status = 'published'"
        " ORDER BY rank", team.team_id, count=4)
    assert [(r["agent_id"], r["rank"], r["ranked_agents"]) for r in rankings] == [
        (a, 1, 4), (b, 2, 4), (c, 3, 4), (d, 4, 4)]
    assert rankings[0]["team_name"] == f"Team {uid}"
    assert rankings[0]["period_start"].isoformat() == "2026-11-01"
    assert rankings[0]["published_at"] == PUBLISHED

    card = (await app_client.get(team.url(PERIOD, f"/scorecards/{a}"),
                                 headers=team.manager)).json()
    flat = (await _rows(db, "SELECT * FROM reporting.scorecards WHERE team_id = $1"
                        " AND agent_id = $2", team.team_id, a))[0]
    assert flat["composite"] == pytest.approx(card["composite"])
    assert flat["rank"] == 1 and flat["status"] == "published"
    assert flat["self_score"] == pytest.approx(card["components"]["self"]["score"])
    assert flat["manager_score"] == pytest.approx(card["components"]["manager"]["score"])
    assert flat["work_ability"] == 90 and flat["task_completion"] == 90
    assert flat["conversion_rate_value"] == pytest.approx(0.25)
    assert flat["conversion_rate_attainment"] == pytest.approx(
        card["kpis"]["conversion_rate"]["attainment"])
    kpis = await _rows(db, "SELECT * FROM reporting.scorecard_kpis WHERE team_id = $1"
                       " AND agent_id = $2", team.team_id, a)
    assert {k["kpi"] for k in kpis} == set(card["kpis"])
    # KPIs as data (issue 19): each row says its label, formula and where its target came from
    conversion = next(k for k in kpis if k["kpi"] == "conversion_rate")
    assert (conversion["label"], conversion["formula"], conversion["target_source"]) == (
        "Consultation conversion rate", "conversions / consultations", "scheme")
    assert conversion["kpi_status"] == card["kpis"]["conversion_rate"]["status"]
    criteria = await _rows(db, "SELECT * FROM reporting.scorecard_criteria WHERE team_id = $1"
                           " AND agent_id = $2 AND criterion = 'cooperation'", team.team_id, a)
    assert [(r["rater_role"], r["score"]) for r in criteria] == [("manager", 90)]
    scores = await _rows(db, "SELECT * FROM reporting.evaluation_scores WHERE team_id = $1"
                         " AND agent_id = $2", team.team_id, a)
    assert len(scores) == 7 and {s["rater_role"] for s in scores} == {"self", "manager"}

    live = (await app_client.get(f"/v1/agents/{a}/kpis?period={PERIOD}",
                                 headers=team.manager)).json()
    # The KPI columns come from the live KPI read model, a second or so behind ingestion.
    history = (await _computed(db, "SELECT * FROM reporting.kpi_history WHERE agent_id = $1"
                               " AND period = $2", a, PERIOD))[0]
    for name, value in live["kpis"].items():
        assert history[name] == (pytest.approx(value) if value is not None else None), name
    assert history["responses"] == 2 and history["samples"] == 7
    assert history["team_ids"] == team.team_id
    team_history = (await _computed(db, "SELECT * FROM reporting.team_kpi_history WHERE"
                                    " team_id = $1", team.team_id))[0]
    assert team_history["agents"] == 1 and team_history["order_amount"] == 120.5

    ledger = await _rows(db, "SELECT * FROM reporting.sanctions WHERE team_id = $1"
                         " ORDER BY publication, ordinal", team.team_id)
    assert [(r["kind"], r["agent_id"], r["effect"]) for r in ledger] == [
        ("reward", a, 100.0), ("deduction", d, -100.0), ("improvement_plan", c, None),
        ("improvement_plan", d, None)]
    plans = await _rows(db, "SELECT * FROM reporting.improvement_plans WHERE team_id = $1",
                        team.team_id)
    assert {(p["agent_id"], p["status"]) for p in plans} == {(c, "due"), (d, "due")}
    totals = await _rows(db, "SELECT agent_id, net FROM reporting.payroll_totals"
                         " WHERE team_id = $1 ORDER BY agent_id", team.team_id)
    assert [(t["agent_id"], t["net"]) for t in totals] == [(a, 100.0), (d, -100.0)]
    cycles = await _rows(db, "SELECT * FROM reporting.cycles WHERE team_id = $1", team.team_id)
    assert cycles[0]["status"] == "published" and cycles[0]["evaluations_submitted"] == 8
    agents = await _rows(db, "SELECT * FROM reporting.agents WHERE team_id = $1", team.team_id)
    assert len(agents) == 4 and agents[0]["team_name"] == f"Team {uid}"

    # Rater calibration and self-vs-manager gaps read as the API computes them.
    calibration = (await app_client.get(f"/v1/teams/{team.team_id}/cycles/{PERIOD}/calibration",
                                        headers=team.manager)).json()
    raters = await _rows(db, "SELECT * FROM reporting.rater_calibration WHERE team_id = $1",
                         team.team_id)
    assert [(r["rater_id"], r["evaluations"], r["flag"]) for r in raters] == [
        (x["rater_id"], x["count"], x["flag"]) for x in calibration["raters"]]
    assert raters[0]["mean"] == pytest.approx(calibration["raters"][0]["mean"])
    gaps = {g["agent_id"]: g for g in await _rows(
        db, "SELECT * FROM reporting.self_manager_gaps WHERE team_id = $1", team.team_id)}
    for expected in calibration["self_vs_manager"]:
        got = gaps[expected["agent_id"]]
        assert got["self_level"] == pytest.approx(expected["self"])
        assert got["manager_level"] == pytest.approx(expected["manager"])
        assert got["flagged"] == expected["flag"]


# -- the view swap ------------------------------------------------------------------------------


class _Shaped(Projection):
    """A projection whose one table changes column order between versions."""

    stream_types = ("nothing-reads-this",)

    async def apply(
        self, conn: asyncpg.Connection, events: Sequence[RecordedEvent], tables: Tables
    ) -> None:
        """Read nothing."""


def _shaped(name: str, columns: str, version: int) -> Projection:
    cls = type(f"Shaped_{name}_{version}", (_Shaped,),
               {"name": name, "version": version, "tables": {name: columns}})
    projection: Projection = cls()
    return projection


async def test_a_swap_that_drops_a_view_remakes_the_reporting_views_over_it(
    db: Database, uid: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    logical = f"shaped_{uid}"
    view = reporting.View(
        f"shaped_{uid}", "A test view.", {"a": "a number", "b": "a text"},
        f"SELECT s.a, s.b FROM public.{logical} s", (logical,),
    )
    monkeypatch.setattr(reporting, "VIEWS", [*reporting.VIEWS, view])
    conn = await db.connect_single()
    try:
        # Its source does not exist yet: skipped, not an error (the extension point).
        assert view.name not in await reporting.ensure_reporting(conn)
        first = await checkpoints.start(conn, _shaped(logical, "(a int, b text)", 1), "live")
        # Starting the read model made the reporting view in the same transaction.
        assert view.name in await reporting_views(conn)
        await conn.execute(f"INSERT INTO {logical}__g{first.generation} VALUES (1, 'old')")
        v2 = _shaped(logical, "(b text, a int)", 2)  # CREATE OR REPLACE cannot do this
        built = await checkpoints.start(conn, v2, "building")
        await conn.execute(f"INSERT INTO {logical}__g{built.generation} VALUES ('new', 2)")
        async with conn.transaction():
            await checkpoints.swap(conn, v2, first, built)
        assert view.name in await reporting_views(conn)
        rows = await conn.fetch(f"SELECT a, b FROM reporting.{view.name}")
        assert [tuple(r) for r in rows] == [(2, "new")]
    finally:
        await conn.execute(f"DROP VIEW IF EXISTS reporting.{view.name}")
        await conn.execute(f"DROP VIEW IF EXISTS {logical}")
        await conn.close()


# -- the read-only role --------------------------------------------------------------------------


def _as_user(url: str, user: str) -> str:
    return reporting_role.connection_url(url, user)


async def test_the_bi_role_reads_the_reporting_schema_and_nothing_else(
    app_client: httpx.AsyncClient, db: Database, database_url: str, uid: str
) -> None:
    await all_views_ready(db)
    user = f"bi_{uid}"
    password = f"pw-{uuid.uuid4().hex}"
    conn = await db.connect_single()
    try:
        setup = await reporting_role.create_bi_role(conn, user, password)
        assert setup.created_user and setup.user == user
        again = await reporting_role.create_bi_role(conn, user, password + "2")  # idempotent
        assert not again.created_user
        stored = await conn.fetchval("SELECT rolpassword FROM pg_authid WHERE rolname = $1",
                                     user)
        assert stored.startswith("SCRAM-SHA-256$") and password not in stored
    finally:
        await conn.close()
    bi = await asyncpg.connect(_as_user(database_url, user), password=password + "2")
    try:
        assert await bi.fetchval("SELECT count(*) >= 0 FROM reporting.rankings")
        assert await bi.fetchval("SHOW default_transaction_read_only") == "on"
        for sql in ("SELECT * FROM public.event LIMIT 1", "SELECT * FROM public.api_key LIMIT 1",
                    "SELECT * FROM public.teams LIMIT 1", "SELECT * FROM public.stream LIMIT 1",
                    "SELECT * FROM webhook_subscription LIMIT 1",
                    "SELECT * FROM reporting_view_state LIMIT 1"):
            # Without USAGE on public, an unqualified name is not even found.
            with pytest.raises((asyncpg.InsufficientPrivilegeError, asyncpg.UndefinedTableError)):
                await bi.fetch(sql)
        # Even with the read-only default switched off, nothing can be written.
        await bi.execute("SET default_transaction_read_only = off")
        for sql in ("INSERT INTO reporting.teams (team_id) VALUES ('x')",
                    "DELETE FROM reporting.agents",
                    "CREATE TABLE reporting.mine (a int)",
                    "CREATE TABLE public.mine (a int)",
                    "CREATE VIEW public.mine AS SELECT 1",
                    "CREATE SCHEMA mine",
                    "DELETE FROM public.event",
                    "SET ROLE postgres"):
            with pytest.raises((asyncpg.InsufficientPrivilegeError,
                                asyncpg.ObjectNotInPrerequisiteStateError)):
                await bi.execute(sql)
        # Not even a temporary table, in a transaction that asks to write.
        await bi.execute("BEGIN READ WRITE")
        with pytest.raises(asyncpg.InsufficientPrivilegeError):
            await bi.execute("CREATE TEMP TABLE mine (a int)")
        await bi.execute("ROLLBACK")
        assert await bi.fetchval(
            "SELECT has_database_privilege(current_database(), 'TEMPORARY')") is False
        assert await bi.fetchval("SELECT has_schema_privilege('public', 'USAGE')") is False
        assert await bi.fetchval("SELECT has_schema_privilege('public', 'CREATE')") is False
        # A BI tool browsing the database sees the reporting schema only.
        visible = await bi.fetch(
            "SELECT DISTINCT table_schema FROM information_schema.tables"
            " WHERE table_schema NOT IN ('pg_catalog', 'information_schema')")
        assert {r["table_schema"] for r in visible} == {"reporting"}
    finally:
        await bi.close()
        async with db.connection() as admin:
            await admin.execute(f'DROP ROLE IF EXISTS "{user}"')


def test_every_monthly_view_has_a_period_start_beside_its_period() -> None:
    for view in reporting.VIEWS:
        names = list(view.columns)
        if "period" in names:
            assert names[names.index("period") + 1] == "period_start", view.name


async def test_evaluation_levels_period_start_is_the_first_of_the_month(
    app_client: httpx.AsyncClient, db: Database, uid: str
) -> None:
    await all_views_ready(db)
    team = await make_team(app_client, uid, 1)
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, {team.agents[0]: 80})
    rows = await _eventually(db, "SELECT period, period_start FROM reporting.evaluation_levels"
                             " WHERE team_id = $1", team.team_id, count=1)
    assert rows[0]["period_start"].isoformat() == PERIOD + "-01"


def test_role_names_are_checked() -> None:
    assert reporting_role.check_role_name("csperf_bi_user") is None
    for bad in ("", "Bad", "1abc", "pg_reader", "csperf_bi", "a;drop", "x" * 64):
        assert reporting_role.check_role_name(bad) is not None, bad


def test_scram_verifier_matches_rfc_7677() -> None:
    # RFC 7677's example: user "user", password "pencil", this salt, 4096 iterations; its
    # client proof follows from the stored key, so derive it and compare.
    import base64
    import hashlib
    import hmac

    salt = base64.b64decode("W22ZaJ0SNY7soEsUEjb6gQ==")
    verifier = reporting_role.scram_verifier("pencil", salt=salt)
    method, rest = verifier.split("$", 1)
    assert method == "SCRAM-SHA-256"
    iterations_salt, keys = rest.split("$")
    assert iterations_salt == "4096:W22ZaJ0SNY7soEsUEjb6gQ=="
    stored_key = base64.b64decode(keys.split(":")[0])
    auth_message = (
        b"n=user,r=rOprNGfwEbeRWgbNEkqO,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        b"s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096,c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj"
        b")hNlF$k0"
    )
    salted = hashlib.pbkdf2_hmac("sha256", b"pencil", salt, 4096)
    client_key = hmac.new(salted, b"Client Key", "sha256").digest()
    assert hashlib.sha256(client_key).digest() == stored_key
    signature = hmac.new(stored_key, auth_message, "sha256").digest()
    proof = bytes(x ^ y for x, y in zip(client_key, signature, strict=True))
    assert base64.b64encode(proof).decode() == "dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="


def test_connection_urls_for_another_user_carry_no_password() -> None:
    assert reporting_role.connection_url("postgresql://postgres:secret@db:5432/csperf", "bi") == (
        "postgresql://bi@db:5432/csperf")
    assert reporting_role.connection_url("postgresql://postgres:@/csperf?host=/x/pgdata", "bi") == (
        "postgresql://bi@/csperf?host=/x/pgdata")


async def test_lenient_and_strict_raters_are_flagged_as_the_api_flags_them(
    app_client: httpx.AsyncClient, db: Database, uid: str, app_clock: PinnedClock
) -> None:
    await all_views_ready(db)
    app_clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    team = await make_team(app_client, uid, 4)
    easy, hard = f"m-easy-{uid}", f"m-hard-{uid}"
    response = await app_client.put(
        f"/v1/teams/{team.team_id}", headers=ADMIN,
        json={"name": f"Team {uid}", "timezone": "Asia/Seoul", "currency": "CNY",
              "manager_ids": [team.manager_id, easy, hard]})
    assert response.status_code == 200, response.text
    await team.open(PERIOD)
    form = ("work_ability", "cooperation", "service", "report_timeliness",
            "report_reliability", "report_quality")
    for manager, score in ((easy, 95), (hard, 45)):
        for agent in team.agents:
            r = await app_client.put(team.url(PERIOD, f"/evaluations/{agent}/manager"),
                                     json={"scores": dict.fromkeys(form, score)},
                                     headers=bearer(make_token("manager", manager)))
            assert r.status_code == 200, r.text
    api = (await app_client.get(f"/v1/teams/{team.team_id}/cycles/{PERIOD}/calibration",
                                headers=team.manager)).json()
    # The projection recomputes the month's calibration with each batch of evaluations: wait
    # for the batch holding the last of the eight.
    for _ in range(200):
        rows = await _rows(db, "SELECT * FROM reporting.rater_calibration WHERE team_id = $1"
                           " ORDER BY rater_id, rater_role", team.team_id)
        if sum(r["evaluations"] for r in rows) == 8:
            break
        await asyncio.sleep(0.05)
    expected = sorted((x["rater_id"], x["flag"], x["deviation"]) for x in api["raters"])
    assert [(r["rater_id"], r["flag"]) for r in rows] == [(i, f) for i, f, _ in expected]
    assert {r["rater_id"]: r["flag"] for r in rows} == {easy: "lenient", hard: "strict"}
    for row, (_, _, deviation) in zip(rows, expected, strict=True):
        assert row["deviation"] == pytest.approx(deviation)


def test_the_cli_makes_a_bi_user_and_prints_how_to_connect(
    database_url: str, uid: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    from service import cli
    from service.config import get_settings

    user = f"bi_cli_{uid}"
    monkeypatch.setenv("CSPERF_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        assert cli.main(["bi-role", "create", "--user", user, "--password", "pw-cli-1"]) == 0
        printed = capsys.readouterr()
        assert printed.out.strip() == reporting_role.connection_url(database_url, user)
        assert "pw-cli-1" not in printed.out + printed.err
        assert cli.main(["db", "url", "--user", user]) == 0
        assert capsys.readouterr().out.strip() == reporting_role.connection_url(database_url, user)
        assert cli.main(["bi-role", "create", "--user", "Not-A-Role", "--password", "x"]) == 2
        monkeypatch.delenv("CSPERF_BI_PASSWORD", raising=False)
        assert cli.main(["bi-role", "create", "--user", user]) == 2  # no password given
    finally:
        get_settings.cache_clear()

        async def drop() -> None:
            conn = await asyncpg.connect(database_url)
            try:
                await conn.execute(f'DROP ROLE IF EXISTS "{user}"')
            finally:
                await conn.close()

        asyncio.run(drop())


async def test_employment_spans_and_absences_reach_the_views(
    app_client: httpx.AsyncClient, db: Database, uid: str
) -> None:
    await all_views_ready(db)
    team = await make_team(app_client, uid, 1)
    (agent,) = team.agents
    body = {"name": "Span", "team_id": team.team_id, "hired_on": "2025-02-03",
            "left_on": "2026-12-31"}
    assert (await app_client.put(f"/v1/agents/{agent}", json=body,
                                 headers=ADMIN)).status_code == 200
    for absence, (start, end) in {"leave": ("2026-11-02", "2026-11-13"),
                                  "gone": ("2026-11-20", "2026-11-21")}.items():
        answer = await app_client.put(
            f"/v1/agents/{agent}/absences/{absence}", headers=ADMIN,
            json={"from": start, "to": end, "kind": "leave"})
        assert answer.status_code in (200, 201), answer.text
    assert (await app_client.delete(f"/v1/agents/{agent}/absences/gone",
                                    headers=ADMIN)).status_code == 200

    async def settled() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        for _ in range(200):
            agents = await _rows(db, "SELECT * FROM reporting.agents WHERE agent_id = $1", agent)
            absences = await _rows(db, "SELECT * FROM reporting.agent_absences"
                                   " WHERE agent_id = $1", agent)
            if agents and agents[0]["left_on"] is not None and len(absences) == 1:
                return agents, absences
            await asyncio.sleep(0.05)
        return agents, absences

    agents, absences = await settled()
    assert agents[0]["hired_on"].isoformat() == "2025-02-03"
    assert agents[0]["left_on"].isoformat() == "2026-12-31"
    # The cancelled absence is gone; the one that stands is there with its days.
    assert [(a["absence_id"], a["from_date"].isoformat(), a["to_date"].isoformat(), a["kind"])
            for a in absences] == [("leave", "2026-11-02", "2026-11-13", "leave")]


# -- KPIs as data: a scheme's new KPI reaches the views without a migration ---------------------

FIRST_CONTACT = {"name": "first_contact_rate", "kind": "measured", "direction": "higher",
                 "target": 0.8, "floor": 0.4, "weight": 0.0, "unit": "ratio",
                 "label": "First-contact resolution",
                 "formula": {"op": "ratio", "of": "first_contact_resolutions",
                             "over": "consultations"}}


async def test_a_kpi_a_scheme_adds_appears_in_the_views_without_a_migration(
    app_client: httpx.AsyncClient, db: Database, uid: str, app_clock: PinnedClock
) -> None:
    await all_views_ready(db)
    async with db.connection() as conn:
        columns_before = await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'reporting'")
    # Given a scheme that declares a metric and a KPI the service has never heard of
    body = (await app_client.get("/v1/schemes/online-shop-cs", headers=ADMIN)).json()
    body.pop("scheme_id"), body.pop("version")
    body["metrics"].append({"name": "first_contact_resolutions", "unit": "count"})
    body["kpis"].append(FIRST_CONTACT)
    scheme_id = f"fcr-{uid}"
    published = await app_client.put(f"/v1/schemes/{scheme_id}", json=body, headers=ADMIN)
    assert published.status_code == 200, published.text
    app_clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    team = await make_team(app_client, uid, 2)
    a, b = team.agents
    used = await app_client.put(f"/v1/teams/{team.team_id}", headers=ADMIN, json={
        "name": "T", "scheme_id": scheme_id,
        "kpi_targets": {"first_contact_rate": {"target": 0.6}}})
    assert used.status_code == 200, used.text
    # When a tool sends the new metric
    source = f"chat-{uid}"
    samples = [(a, "consultations", 10), (a, "first_contact_resolutions", 7),
               (b, "consultations", 4), (b, "first_contact_resolutions", 1)]
    sent = await app_client.post("/v1/metrics", headers=bearer(make_token(
        "ingest", source=source)), json={"source": source, "samples": [
            {"id": f"{uid}-{i}", "agent_id": agent, "metric": metric, "value": value,
             "occurred_at": AT} for i, (agent, metric, value) in enumerate(samples)]})
    assert sent.status_code == 200 and sent.json()["accepted"] == 4, sent.text
    # Then the live KPI rows carry it, as the API computes it, with the team's target
    live = (await app_client.get(f"/v1/agents/{a}/kpis?period={PERIOD}",
                                 headers=team.manager)).json()
    assert live["kpis"]["first_contact_rate"] == pytest.approx(0.7)
    rows = await _eventually(
        db, "SELECT * FROM reporting.kpi_values WHERE team_id = $1 AND period = $2"
        " AND kpi = 'first_contact_rate' ORDER BY agent_id NULLS LAST", team.team_id, PERIOD,
        count=3)
    by_agent = {r["agent_id"]: r for r in rows}
    assert by_agent[a]["value"] == pytest.approx(0.7)
    assert by_agent[b]["value"] == pytest.approx(0.25)
    assert by_agent[None]["value"] == pytest.approx(8 / 14)  # the team: 8 of 14
    assert (by_agent[a]["target"], by_agent[a]["floor"], by_agent[a]["target_source"]) == (
        0.6, 0.4, "team")
    assert by_agent[a]["attainment"] == 100.0
    assert by_agent[b]["attainment"] == 0.0
    assert by_agent[a]["label"] == "First-contact resolution"
    assert by_agent[a]["formula"] == "first_contact_resolutions / consultations"
    # More samples: the row follows
    more = await app_client.post("/v1/metrics", headers=bearer(make_token(
        "ingest", source=source)), json={"source": source, "samples": [
            {"id": f"{uid}-more", "agent_id": b, "metric": "first_contact_resolutions",
             "value": 2, "occurred_at": AT}]})
    assert more.json()["accepted"] == 1
    # A minute at most, as _eventually: on a loaded machine the refresher pauses for nine
    # times a slow pass (kpi_values.SHARE).
    for _ in range(1200):
        [row] = await _rows(db, "SELECT value FROM reporting.kpi_values WHERE agent_id = $1"
                            " AND kpi = 'first_contact_rate'", b)
        if row["value"] == pytest.approx(0.75):
            break
        await asyncio.sleep(0.05)
    assert row["value"] == pytest.approx(0.75)
    # A new team target reaches the rows at the next sweep, without a sample
    retarget = await app_client.put(f"/v1/teams/{team.team_id}", headers=ADMIN, json={
        "name": "T", "scheme_id": scheme_id,
        "kpi_targets": {"first_contact_rate": {"target": 0.7}}})
    assert retarget.status_code == 200, retarget.text
    async with db.connection() as conn:
        await kpi_values.sweep(conn, datetime(2026, 11, 27, tzinfo=UTC))
    for _ in range(1200):
        [row] = await _rows(db, "SELECT target FROM reporting.kpi_values WHERE agent_id = $1"
                            " AND kpi = 'first_contact_rate'", b)
        if row["target"] == 0.7:
            break
        await asyncio.sleep(0.05)
    assert row["target"] == 0.7

    # And once the month closes, each scorecard's rows carry it too
    await team.open(PERIOD, scheme_version=None)
    await train(app_client, team.manager_id)
    await team.evaluate_all(PERIOD, {a: 80, b: 70})
    assert (await team.close(PERIOD)).status_code == 200
    kpis = await _eventually(
        db, "SELECT * FROM reporting.scorecard_kpis WHERE team_id = $1"
        " AND kpi = 'first_contact_rate' ORDER BY agent_id", team.team_id, count=2)
    card = (await app_client.get(team.url(PERIOD, f"/scorecards/{a}"),
                                 headers=team.manager)).json()["kpis"]["first_contact_rate"]
    assert [(k["agent_id"], k["value"], k["status"]) for k in kpis] == [
        (a, pytest.approx(0.7), "closed"), (b, pytest.approx(0.75), "closed")]
    assert (kpis[0]["target"], kpis[0]["attainment"], kpis[0]["target_source"]) == (
        card["target"], card["attainment"], card["target_source"])
    # without a single new column anywhere in the reporting schema
    async with db.connection() as conn:
        assert await conn.fetchval(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'reporting'"
        ) == columns_before


async def test_a_live_kpi_pass_folds_the_pending_totals_then_recomputes_them(
    app_client: httpx.AsyncClient, db: Database, uid: str, app_clock: PinnedClock
) -> None:
    # The live KPI loop folds the totals itself (there is no compactor loop of its own), so
    # one pass leaves none of an agent's deltas pending and its rows counting them.
    app_clock.set(datetime(2026, 11, 27, 9, 0, tzinfo=UTC))
    team = await make_team(app_client, uid, 1)
    [agent] = team.agents
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    loop = kpi_values.KpiValues(db, partial(month_context, ctx), clock=ctx.clock)
    at = datetime.fromisoformat(AT)
    batch = m.Samples.of([
        m.Sample(id=f"{uid}-{i}", agent_id=agent, metric=metric, value=value, occurred_at=at)
        for i, (metric, value) in enumerate([("consultations", 4), ("conversions", 1)])])
    async with db.connection() as conn, conn.transaction():
        # The app's own loop waits for this transaction (its fold deletes deltas), so the
        # pass below is the one that folds.
        await conn.execute("LOCK TABLE metric_total_delta IN SHARE ROW EXCLUSIVE MODE")
        stored = await metric_commands.settle(conn, [f"chat-{uid}"] * 2, batch,
                                              app_clock(), keep_rejected=True)
        assert stored.accepted == 2
        pending = "SELECT count(*) FROM metric_total_delta WHERE agent_id = $1"
        assert await conn.fetchval(pending, agent) == 2
        await loop.work(conn)
        assert await conn.fetchval(pending, agent) == 0
        assert await conn.fetchval(
            "SELECT sum(observations) FROM metric_total WHERE agent_id = $1", agent) == 2
        row = await conn.fetchrow("SELECT value, samples FROM kpi_values WHERE agent_id = $1"
                                  " AND kpi = 'conversion_rate'", agent)
        assert (row["value"], row["samples"]) == (pytest.approx(0.25), 2)
