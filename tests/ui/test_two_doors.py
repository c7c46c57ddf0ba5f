"""Two doors, one application layer: for the same caller the pages and the JSON API agree.

A value a page shows equals the one the API answers (the board's KPI cells come from one
batched read of the month's scorecards, the API's from one scorecard at a time), a download
is the API's own table, and what the API refuses a caller the page refuses them too.
"""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from service.ui.fmt import Fmt
from tests.ui.conftest import Shop, SignIn

PUBLISHED = "2026-10"
OPEN = "2026-11"


async def api(shop: Shop, label: str, url: str, accept: str | None = None) -> httpx.Response:
    headers = shop.api(label) | ({"Accept": accept} if accept else {})
    transport = httpx.ASGITransport(app=shop.app)
    async with httpx.AsyncClient(transport=transport, base_url="http://csperf.test") as client:
        return await client.get(url, headers=headers)


def board_row(html: str, agent_id: str) -> str:
    """Return the board's ranking row of one agent (its HTML)."""
    match = re.search(rf'<tr id="agent-{re.escape(agent_id)}" data-agent=.*?</tr>', html, re.S)
    assert match, f"no row for {agent_id}"
    return match.group(0)


async def shanghai(shop: Shop) -> Fmt:
    """Return how the pages write Shanghai's numbers, from the team the API answers."""
    team = (await api(shop, "admin", "/v1/teams/shop-sh")).json()
    return Fmt(team["timezone"], team["currency"], team.get("locale"))


def shown_cells(card: dict[str, Any], f: Fmt) -> list[str]:
    """Return the titles the board must show for a card's measured KPIs, from the API's card."""
    cells = []
    for name, kpi in card["kpis"].items():
        if (kpi["kind"] == "measured" and kpi.get("status") == "measured"
                and kpi.get("attainment") is not None and kpi.get("prorated_by") is None):
            label = kpi.get("label") or name
            cells.append(f'title="{label}: attainment {f.num(kpi["attainment"], 0)}'
                         ' of 100"')
    return cells


@pytest.mark.parametrize("period", [PUBLISHED, OPEN])
async def test_the_boards_kpi_cells_are_the_apis_scorecards(
    sign_in: SignIn, shop: Shop, period: str
) -> None:
    page = await (await sign_in("m-chen")).get(f"/ui/teams/shop-sh?period={period}")
    assert page.status_code == 200
    ranking = (await api(shop, "m-chen", f"/v1/teams/shop-sh/cycles/{period}/ranking")).json()
    f = await shanghai(shop)
    checked = 0
    for entry in ranking["entries"]:
        agent_id = entry["agent_id"]
        url = f"/v1/teams/shop-sh/cycles/{period}/scorecards/{agent_id}"
        card = (await api(shop, "m-chen", url)).json()
        row = board_row(page.text, agent_id)
        for cell in shown_cells(card, f):
            assert cell in row, (agent_id, cell)
            checked += 1
    assert checked >= len(ranking["entries"])  # every row has at least one measured KPI


@pytest.mark.parametrize(("label", "period"), [
    ("m-chen", PUBLISHED), ("m-chen", OPEN),
    # The agent's own months: released (published) and withheld (open: no composite yet).
    ("sh-wang-lei", PUBLISHED), ("sh-wang-lei", OPEN),
])
async def test_the_agent_page_shows_the_apis_composite(
    sign_in: SignIn, shop: Shop, label: str, period: str
) -> None:
    page = await (await sign_in(label)).get(f"/ui/agents/sh-wang-lei?period={period}")
    assert page.status_code == 200
    card = (await api(shop, label,
                      f"/v1/teams/shop-sh/cycles/{period}/scorecards/sh-wang-lei")).json()
    f = await shanghai(shop)
    assert f"Score <strong>{f.num(card['composite'], 1)}</strong>" in page.text


async def test_a_download_is_the_apis_table(sign_in: SignIn, shop: Shop) -> None:
    client = await sign_in("m-chen")
    url = f"/v1/teams/shop-sh/cycles/{PUBLISHED}/ranking"
    from_api = await api(shop, "m-chen", url, accept="text/csv")
    from_page = await client.get(f"/ui/teams/shop-sh/months/{PUBLISHED}/ranking.csv")
    assert from_page.status_code == from_api.status_code == 200
    assert from_page.content == from_api.content
    ledger_api = await api(shop, "m-chen", f"/v1/sanctions?team_id=shop-sh&period={PUBLISHED}",
                           accept="text/csv")
    ledger_page = await client.get(f"/ui/sanctions.csv?team_id=shop-sh&period={PUBLISHED}")
    assert ledger_page.content == ledger_api.content


#: (caller, the API's URL, the page's URL of the same read)
SAME_READS = [
    ("m-chen", "/v1/teams/shop-be", "/ui/teams/shop-be"),
    ("m-weber", f"/v1/teams/shop-sh/cycles/{PUBLISHED}/ranking",
     f"/ui/teams/shop-sh/months/{PUBLISHED}/ranking.csv"),
    # An agent sees their team's ranking once the month is published, not while open.
    ("sh-wang-lei", f"/v1/teams/shop-sh/cycles/{OPEN}/ranking",
     f"/ui/teams/shop-sh/months/{OPEN}/ranking.csv"),
    ("sh-wang-lei", f"/v1/teams/shop-sh/cycles/{PUBLISHED}/ranking",
     f"/ui/teams/shop-sh/months/{PUBLISHED}/ranking.csv"),
    ("sh-wang-lei", "/v1/agents/sh-zhou-jie", "/ui/agents/sh-zhou-jie"),
    ("sh-wang-lei", "/v1/agents/sh-wang-lei", "/ui/agents/sh-wang-lei"),
    ("sh-wang-lei", f"/v1/payroll?period={PUBLISHED}", f"/ui/payroll/{PUBLISHED}.csv"),
    ("m-chen", f"/v1/payroll?period={PUBLISHED}&team_id=shop-be",
     f"/ui/payroll/{PUBLISHED}.csv?team_id=shop-be"),
    ("m-chen", "/v1/sanctions?team_id=shop-be", "/ui/sanctions.csv?team_id=shop-be"),
    ("sh-wang-lei", f"/v1/teams/shop-sh/cycles/{PUBLISHED}/scorecards/sh-zhou-jie",
     f"/ui/teams/shop-sh/months/{PUBLISHED}/evaluations/sh-zhou-jie/self"),
    ("m-weber", f"/v1/teams/shop-sh/cycles/{OPEN}/scorecards/sh-wang-lei",
     f"/ui/teams/shop-sh/months/{OPEN}/evaluations/sh-wang-lei/manager"),
]


@pytest.mark.parametrize(("label", "api_url", "page_url"), SAME_READS)
async def test_what_the_api_refuses_the_page_refuses(
    sign_in: SignIn, shop: Shop, label: str, api_url: str, page_url: str
) -> None:
    from_api = await api(shop, label, api_url)
    from_page = await (await sign_in(label)).get(page_url)
    assert from_api.status_code in (200, 403), from_api.text
    assert (from_page.status_code == 403) == (from_api.status_code == 403), (
        from_api.status_code, from_page.status_code, from_page.text[:300])
