"""Every list that answers CSV answers Excel too: typed cells, frozen header, sheet per team."""

from __future__ import annotations

import csv
import io
from datetime import date, datetime, timedelta
from uuid import UUID

import httpx
import yaml
from openpyxl import load_workbook
from openpyxl.workbook.workbook import Workbook
from starlette.requests import Request

from service.api.tabular import XLSX, money_format, table_format
from service.domain.cycle import cycle_stream
from service.queries.results import RANKING_COLUMNS
from service.queries.sanctions import PAYROLL_COLUMNS, SANCTION_COLUMNS
from tests.api.test_csv import CSV_ENDPOINTS, EVALUATING, PERIOD, PUBLISHED
from tests.api.test_sanctions import PUBLISHED as PUBLISHED_AT
from tests.api.test_sanctions import publish_month, ranked
from tests.conftest import TestClock as PinnedClock
from tests.support.scenario import ADMIN, make_team
from tests.support.server import ROOT

EXCEL = {"Accept": XLSX}
RTL_NAME = "مريم الحسن"  # Arabic, right to left
HEBREW_NAME = "דנה לוי"
EMOJI_NAME = "Ana 🌸 Lima 👩🏽‍💻"
HOSTILE = '=HYPERLINK("http://evil.example","y")'


def workbook(response: httpx.Response) -> Workbook:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == XLSX
    assert response.headers["content-disposition"].endswith('.xlsx"')
    return load_workbook(io.BytesIO(response.content))


def _request(accept: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": b"",
                    "headers": [(b"accept", accept.encode())]})


def test_the_accept_header_picks_the_table_format_in_one_place() -> None:
    assert table_format(_request("text/csv")) == "csv"
    assert table_format(_request(XLSX)) == "xlsx"
    assert table_format(_request(f"{XLSX}, text/csv;q=0.5")) == "xlsx"
    assert table_format(_request(f"text/csv, {XLSX};q=0.5")) == "csv"
    assert table_format(_request(f"application/json, {XLSX}")) is None
    assert table_format(_request("text/html,application/xhtml+xml,*/*;q=0.8")) is None
    assert table_format(_request("*/*")) is None


def test_money_formats_follow_the_currency() -> None:
    assert money_format("EUR") == '"€"#,##0.00;-"€"#,##0.00'
    assert money_format("KRW") == '"₩"#,##0;-"₩"#,##0'
    assert money_format("CHF") == '"CHF "#,##0.00;-"CHF "#,##0.00'
    assert money_format(None) == "#,##0.00;-#,##0.00"


def test_money_formats_follow_the_team_locale() -> None:
    """With the team's locale, Babel's currency pattern: the symbol's side and the digits."""
    assert money_format("EUR", "de_DE") == '#,##0.00 "€";-#,##0.00 "€"'
    assert money_format("CNY", "zh_Hans_CN") == '"¥"#,##0.00;-"¥"#,##0.00'
    assert money_format("KRW", "ko_KR") == '"₩"#,##0;-"₩"#,##0'
    assert money_format("EUR", "not_a_locale") == money_format("EUR")


def test_openapi_declares_excel_wherever_it_declares_csv() -> None:
    document = yaml.safe_load((ROOT / "openapi.yaml").read_text())
    offered = {path for path, operations in document["paths"].items()
               if XLSX in operations.get("get", {}).get("responses", {})
               .get("200", {}).get("content", {})}
    assert offered == CSV_ENDPOINTS


async def test_ranking_in_excel_has_typed_cells_and_the_names_as_written(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 0)
    for i, name in enumerate((RTL_NAME, EMOJI_NAME, HEBREW_NAME, HOSTILE)):
        response = await app_client.put(f"/v1/agents/x-{uid}-{i}",
                                        json={"name": name, "team_id": team.team_id},
                                        headers=ADMIN)
        assert response.status_code == 201, response.text
        team.agents.append(f"x-{uid}-{i}")
    await publish_month(team, app_clock, PERIOD, ranked(team, 90, 80, 70, 60))
    book = workbook(await app_client.get(team.url(PERIOD, "/ranking"),
                                         headers={**team.manager, **EXCEL}))
    sheet = book.active
    assert sheet is not None
    assert sheet.freeze_panes == "A2"  # the header row stays in view
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert header == RANKING_COLUMNS
    by_column = [dict(zip(header, row, strict=True)) for row in rows]
    assert [r["name"] for r in by_column] == [RTL_NAME, EMOJI_NAME, HEBREW_NAME, HOSTILE]
    assert [r["rank"] for r in by_column] == [1, 2, 3, 4]
    assert all(type(r["rank"]) is int and isinstance(r["score"], float) for r in by_column)
    assert all(r["tied"] is False for r in by_column)
    # A name that looks like a formula is a plain string cell, never a formula.
    hostile_cell = sheet.cell(row=5, column=header.index("name") + 1)
    assert hostile_cell.data_type == "s" and hostile_cell.value == HOSTILE
    # Widths follow the content: the name column is wider than the rank column.
    width = {c: sheet.column_dimensions[c].width for c in ("A", "C")}
    assert width["C"] > width["A"] >= len("rank")
    # The same rows as the CSV of the same list.
    as_csv = await app_client.get(team.url(PERIOD, "/ranking"),
                                  headers={**team.manager, "Accept": "text/csv"})
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.text, newline="")))
    assert [r["agent_id"] for r in csv_rows] == [r["agent_id"] for r in by_column]
    assert [float(r["score"]) for r in csv_rows] == [r["score"] for r in by_column]


async def test_a_frozen_ranking_has_an_etag_per_format(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    team = await make_team(app_client, uid, 2)
    await publish_month(team, app_clock, PERIOD, ranked(team, 90, 80))
    url = team.url(PERIOD, "/ranking")
    tags = {accept: (await app_client.get(url, headers={**team.manager, "Accept": accept}))
            .headers.get("etag") for accept in ("application/json", "text/csv", XLSX)}
    assert len(set(tags.values())) == 3 and None not in tags.values()
    again = await app_client.get(url, headers={**team.manager, **EXCEL,
                                               "If-None-Match": tags[XLSX] or ""})
    assert again.status_code == 304


async def test_a_frozen_rankings_workbook_is_written_once_per_revision(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    """A published month's workbook is held by its revision; a correction's new revision gets
    a workbook of its own, with the corrected scores."""
    team = await make_team(app_client, uid, 2)
    await publish_month(team, app_clock, PERIOD, ranked(team, 90, 80))
    url = team.url(PERIOD, "/ranking")
    held = app_client.app.state.ctx.workbooks  # type: ignore[attr-defined]
    first = await app_client.get(url, headers={**team.manager, **EXCEL})
    revision = (await app_client.get(url, headers=team.manager)).headers["etag"].strip('"')
    assert held.get(UUID(revision))[1] == first.content
    # Answered from what is held: replaced there, the download says so.
    name, body = held.get(UUID(revision))
    held.put(UUID(revision), (name, body + b"held"))
    again = await app_client.get(url, headers={**team.manager, **EXCEL})
    assert again.content == body + b"held"
    assert again.headers["content-disposition"] == first.headers["content-disposition"]
    # A correction publishes a new revision: its workbook is written from its own document.
    reopened = await app_client.post(team.url(PERIOD, "/reopen"), json={"reason": "typo"},
                                     headers=team.manager)
    assert reopened.status_code == 200, reopened.text
    await team.manager_eval(PERIOD, team.agents[1], 100)
    assert (await team.close(PERIOD)).status_code == 200
    assert (await team.publish(PERIOD)).status_code == 200
    sheet = workbook(await app_client.get(url, headers={**team.manager, **EXCEL})).active
    assert sheet is not None
    assert [row[1] for row in sheet.iter_rows(min_row=2, values_only=True)] == [
        team.agents[1], team.agents[0]]


async def test_sanctions_and_payroll_in_excel_have_a_sheet_per_team_money_and_dates(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    seoul = await make_team(app_client, uid, 3)
    berlin = await make_team(app_client, uid + "b", 3)
    # One manager for both teams, so one list spans them; Berlin pays in euros.
    response = await app_client.put(
        f"/v1/teams/{berlin.team_id}",
        json={"name": f"Berlin {uid}", "timezone": "Europe/Berlin", "currency": "EUR",
              "manager_ids": [berlin.manager_id, seoul.manager_id]}, headers=ADMIN)
    assert response.status_code == 200, response.text
    response = await app_client.put(f"/v1/agents/{seoul.agents[0]}",
                                    json={"name": EMOJI_NAME, "team_id": seoul.team_id},
                                    headers=ADMIN)
    assert response.status_code == 200, response.text
    await publish_month(seoul, app_clock, PERIOD, ranked(seoul, 90, 80, 70))
    await publish_month(berlin, app_clock, PERIOD, ranked(berlin, 90, 80, 70))

    book = workbook(await app_client.get("/v1/sanctions", params={"period": PERIOD},
                                         headers={**seoul.manager, **EXCEL}))
    assert sorted(book.sheetnames) == sorted([seoul.team_id, berlin.team_id])
    for team, symbol in ((seoul, "¥"), (berlin, "€")):
        sheet = book[team.team_id]
        assert sheet.freeze_panes == "A2"
        header, *rows = list(sheet.iter_rows(values_only=True))
        assert header == SANCTION_COLUMNS
        lines = [dict(zip(header, row, strict=True)) for row in rows]
        assert {line["team_id"] for line in lines} == {team.team_id}
        reward = next(line for line in lines if line["kind"] == "reward")
        assert reward["agent_id"] == team.agents[0] and reward["amount"] == 100
        assert isinstance(reward["created_at"], datetime)
        # Instants are UTC: the publication time, as the JSON gives it.
        assert reward["created_at"] == PUBLISHED_AT.replace(tzinfo=None)
        amount = sheet.cell(row=2 + lines.index(reward), column=header.index("amount") + 1)
        assert amount.data_type == "n" and symbol in amount.number_format
        plan = next(line for line in lines if line["kind"] == "improvement_plan")
        assert plan["due_at"] == (PUBLISHED_AT + timedelta(days=7)).replace(tzinfo=None)
        assert plan["amount"] is None

    book = workbook(await app_client.get("/v1/payroll", params={"period": PERIOD},
                                         headers={**seoul.manager, **EXCEL}))
    assert sorted(book.sheetnames) == sorted([seoul.team_id, berlin.team_id])
    header, *rows = list(book[berlin.team_id].iter_rows(values_only=True))
    assert header == PAYROLL_COLUMNS
    effects = sorted((row[header.index("agent_id")], row[header.index("effect")])
                     for row in rows)
    assert effects == sorted([(berlin.agents[0], 100), (berlin.agents[2], -100)])
    effect_cell = book[berlin.team_id].cell(row=2, column=header.index("effect") + 1)
    assert "€" in effect_cell.number_format and effect_cell.data_type == "n"


async def test_an_empty_list_is_a_workbook_with_its_header(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 0)
    book = workbook(await app_client.get("/v1/sanctions", params={"team_id": team.team_id},
                                         headers={**team.manager, **EXCEL}))
    assert len(book.sheetnames) == 1
    sheet = book.active
    assert sheet is not None
    assert list(sheet.iter_rows(values_only=True)) == [SANCTION_COLUMNS]


async def test_every_csv_list_answers_excel_with_the_same_header_and_rows(
    app_client: httpx.AsyncClient, uid: str, app_clock: PinnedClock
) -> None:
    app_clock.set(EVALUATING)
    team = await make_team(app_client, uid, 3)
    await team.open(PERIOD)
    await team.evaluate_all(PERIOD, ranked(team, 90, 80, 70))
    app_clock.set(PUBLISHED)
    assert (await team.close(PERIOD)).status_code == 200
    assert (await team.publish(PERIOD)).status_code == 200
    t, m, a = team.team_id, team.manager, team.agents[0]
    paths = [
        (f"/v1/teams/{t}/agents", m), (team.url(PERIOD, "/ranking"), m),
        (team.url(PERIOD, "/evaluations"), m), (team.url(PERIOD, "/invitations"), m),
        (team.url(PERIOD, "/goals"), m), (team.url(PERIOD, "/feedback/classification"), m),
        (team.url(PERIOD, "/interviews"), m), (team.url(PERIOD, "/calibration"), m),
        (f"/v1/training/{a}", m),
        (f"/v1/agents/{a}/kpis?period={PERIOD}", m), (f"/v1/teams/{t}/kpis?period={PERIOD}", m),
        (f"/v1/sanctions?team_id={t}", m), (f"/v1/payroll?period={PERIOD}&team_id={t}", m),
        ("/v1/metrics/quarantine", ADMIN), ("/v1/events?limit=5", ADMIN),
        (f"/v1/streams/{cycle_stream(t, PERIOD)}/events", ADMIN),
        (f"/v1/appeals?team_id={t}", m),
    ]
    assert len(paths) == len(CSV_ENDPOINTS)
    failures = []
    for path, headers in paths:
        as_csv = await app_client.get(path, headers={**headers, "Accept": "text/csv"})
        as_xlsx = await app_client.get(path, headers={**headers, **EXCEL})
        if as_csv.status_code != 200 or as_xlsx.status_code != 200:
            failures.append(f"{path}: {as_csv.status_code} / {as_xlsx.status_code}")
            continue
        header, *rows = list(csv.reader(io.StringIO(as_csv.text, newline="")))
        book = workbook(as_xlsx)
        cells = [row for sheet in book.worksheets for row in sheet.iter_rows(values_only=True)]
        sheet_header = cells[0]
        body = [row for row in cells if row != sheet_header]
        if list(sheet_header) != header or len(body) != len(rows):
            failures.append(f"{path}: {sheet_header} / {header}, {len(body)} / {len(rows)}")
    assert not failures, "\n".join(failures)
    # A day stays a day (an agent's joining date).
    agents = workbook(await app_client.get(f"/v1/teams/{t}/agents", headers={**m, **EXCEL}))
    sheet = agents.active
    assert sheet is not None
    since = sheet.cell(row=2, column=5)
    listed = (await app_client.get(f"/v1/agents/{since.offset(column=-4).value}",
                                   headers=m)).json()
    assert since.is_date and isinstance(since.value, datetime)
    assert since.value.date() == date.fromisoformat(listed["history"][-1]["since"][:10])
