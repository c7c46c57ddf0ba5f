"""The printable monthly report and the pages' CSV and Excel downloads, over the demo shop."""

from __future__ import annotations

import csv
import io
import re

from openpyxl import load_workbook

from service.api.tabular import XLSX
from tests.conftest import make_token
from tests.ui.conftest import SignIn
from tests.ui.test_pages import problem_kind

PUBLISHED = "2026-10"  # Shanghai's October: published, with all four kinds of consequence
REPORT = f"/ui/teams/shop-sh/months/{PUBLISHED}/report"


def lines_of(html: str) -> list[str]:
    """Return the agents whose own page (section) the report has, in order."""
    return re.findall(r'<section class="agent-line"[^>]*data-agent="([^"]+)"', html)


async def test_the_board_links_the_report_of_a_published_month(sign_in: SignIn) -> None:
    client = await sign_in("m-chen")
    board = await client.get(f"/ui/teams/shop-sh?period={PUBLISHED}")
    assert f'href="{REPORT}"' in board.text
    current = await client.get("/ui/teams/shop-sh?period=2026-11")  # open: no report yet
    assert "/report" not in current.text


async def test_the_report_has_every_section_and_a_page_per_agent(sign_in: SignIn) -> None:
    client = await sign_in("m-chen")
    report = await client.get(REPORT)
    assert report.status_code == 200
    html = report.text
    ranked = re.findall(r'<tr data-agent="([^"]+)">\s*<td class="rank">', html)
    assert "sh-li-na" == ranked[0] and "sh-wang-lei" == ranked[-1]
    assert lines_of(html) == ranked  # every ranked agent's line, in ranking order
    assert '<tr class="targets">' in html  # the KPI targets above the ranking
    consequences = html.split('id="consequences-h"')[1].split('class="agent-line"')[0]
    for kind in ("reward", "deduction", "improvement_plan", "reassignment_review"):
        assert f'data-kind="{kind}"' in consequences, kind
    assert 'id="not-ranked-h"' in html and 'id="unavailable-h"' in html
    # The print stylesheet: A4, and a page break before each agent's line.
    css = (await client.get("/ui/static/report.css")).text
    assert "@page" in css and "@media print" in css
    assert re.search(r"\.agent-line \{[^}]*break-before: page", css)
    assert "report.css" in html
    wang = html.split('data-agent="sh-wang-lei"')[-1]
    assert "Improvement plan" in wang and "deadline" in wang


async def test_an_unpublished_month_has_no_report(sign_in: SignIn) -> None:
    # Shanghai's November is open in the demo; the report waits for the publication.
    client = await sign_in("m-chen")
    response = await client.get("/ui/teams/shop-sh/months/2026-11/report")
    assert response.status_code == 409 and problem_kind(response) == "not-published"


async def test_the_report_follows_the_rankings_access_rules(sign_in: SignIn) -> None:
    foreign = await (await sign_in("m-weber")).get(REPORT)
    assert foreign.status_code == 403 and problem_kind(foreign) == "out-of-scope"
    agent = await (await sign_in("sh-wang-lei")).get(REPORT)
    assert agent.status_code == 200
    # An agent reads the published ranking, but only their own line and consequences.
    assert lines_of(agent.text) == ["sh-wang-lei"]
    consequences = agent.text.split('id="consequences-h"')[1].split('class="agent-line"')[0]
    assert set(re.findall(r'data-agent="([^"]+)"', consequences)) == {"sh-wang-lei"}
    other_team_agent = await (await sign_in(make_token("agent", "be-paul-koch"))).get(REPORT)
    assert other_team_agent.status_code == 403


async def test_the_pages_download_the_ranking_and_ledger_as_csv_and_excel(
    sign_in: SignIn,
) -> None:
    client = await sign_in("m-chen")
    board = await client.get(f"/ui/teams/shop-sh?period={PUBLISHED}")
    for link in (f"/ui/teams/shop-sh/months/{PUBLISHED}/ranking.xlsx",
                 f"/ui/sanctions.xlsx?team_id=shop-sh&amp;period={PUBLISHED}",
                 f"/ui/payroll/{PUBLISHED}.xlsx?team_id=shop-sh"):
        assert f'href="{link}"' in board.text and f'href="{link[:-5]}' in board.text
    as_csv = await client.get(f"/ui/teams/shop-sh/months/{PUBLISHED}/ranking.csv")
    assert as_csv.headers["content-type"].startswith("text/csv")
    csv_rows = list(csv.DictReader(io.StringIO(as_csv.text, newline="")))
    as_xlsx = await client.get(f"/ui/teams/shop-sh/months/{PUBLISHED}/ranking.xlsx")
    assert as_xlsx.headers["content-type"] == XLSX
    sheet = load_workbook(io.BytesIO(as_xlsx.content)).active
    assert sheet is not None
    header, *rows = list(sheet.iter_rows(values_only=True))
    assert [r[header.index("agent_id")] for r in rows] == [r["agent_id"] for r in csv_rows]
    ledger = await client.get(f"/ui/sanctions.xlsx?team_id=shop-sh&period={PUBLISHED}")
    book = load_workbook(io.BytesIO(ledger.content))
    assert book.sheetnames == ["shop-sh"]
    payroll = await client.get(f"/ui/payroll/{PUBLISHED}.xlsx?team_id=shop-sh")
    assert payroll.status_code == 200 and payroll.headers["content-type"] == XLSX
    # The API's rules decide the downloads too: payroll is for managers.
    agent = await sign_in("sh-wang-lei")
    refused = await agent.get(f"/ui/payroll/{PUBLISHED}.xlsx?team_id=shop-sh")
    assert refused.status_code == 403
    foreign = await (await sign_in("m-weber")).get(
        f"/ui/teams/shop-sh/months/{PUBLISHED}/ranking.xlsx")
    assert foreign.status_code == 403
    sanctions_page = await client.get("/ui/sanctions")
    assert 'href="/ui/sanctions.xlsx"' in sanctions_page.text
