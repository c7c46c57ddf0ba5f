"""The second door: POST /v1/metrics with CSV and NDJSON bodies, and csperf metrics import."""

from __future__ import annotations

import asyncio
import os
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from service.domain import metrics as m
from tests.conftest import bearer, make_token
from tests.support.scenario import ADMIN, make_team

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
HEADER = "id,agent_id,metric,value,occurred_at"


def ingest(source: str, media: str) -> dict[str, str]:
    return {**bearer(make_token("ingest", source=source)), "content-type": media}


async def post(client: httpx.AsyncClient, source: str, body: bytes | str, media: str,
               query: str | None = None) -> httpx.Response:
    data = body.encode() if isinstance(body, str) else body
    return await client.post(f"/v1/metrics?source={query or source}", content=data,
                             headers=ingest(source, media))


async def samples_of(client: httpx.AsyncClient, agent: str) -> int:
    body = (await client.get(f"/v1/agents/{agent}/kpis?period=2026-11", headers=ADMIN)).json()
    count: int = body["samples"]
    return count


async def test_csv_rows_at_the_longest_lengths_are_used_and_one_more_is_a_422(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    # A CSV row takes its own quick check (``shaped``) before the adapter: the same limits,
    # up to the staging table's bounds, at four bytes a character.
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    longest = "\U0001F600" * m.SAMPLE_ID_MAX
    metric = "\U0001F601" * m.METRIC_MAX
    body = "\n".join([HEADER, f"{longest},{a},orders,1,2026-11-20T10:00:00Z",
                      f"{uid}-2,{a},{metric},1,2026-11-20T10:00:00Z"]) + "\n"
    answer = (await post(app_client, f"csv-{uid}", body, "text/csv")).json()
    assert answer["accepted"] == 1, answer
    assert [(r["index"], r["reason"]) for r in answer["rejected"]] == [(1, "unknown_metric")]
    for row in (f"{longest}x,{a},orders,1,2026-11-20T10:00:00Z",
                f"{uid}-3,{a},{metric}x,1,2026-11-20T10:00:00Z"):
        response = await post(app_client, f"csv-{uid}", f"{HEADER}\n{row}\n", "text/csv")
        assert response.status_code == 422, response.text
        assert "line 2" in response.text, response.text


async def test_csv_with_bom_and_crlf_answers_as_json_does(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    rows = [HEADER,
            f"{uid}-1,{a},orders,2,2026-11-20T10:00:00+09:00",
            f"{uid}-2,{a},order_amount,12.5,2026-11-20T10:00:00Z",
            f"{uid}-3,{a},orders,-1,2026-11-20T10:00:00Z",         # negative: kept
            f"{uid}-4,nobody-{uid},orders,1,2026-11-20T10:00:00Z",  # unknown agent: kept
            f"{uid}-1,{a},orders,2,2026-11-20T10:00:00+09:00"]      # the same id again
    body = b"\xef\xbb\xbf" + "\r\n".join(rows).encode() + b"\r\n"
    response = await post(app_client, f"csv-{uid}", body, "text/csv; charset=utf-8")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"]) == (2, 1)
    assert [(r["index"], r["id"], r["reason"]) for r in answer["rejected"]] == [
        (2, f"{uid}-3", "negative_value"), (3, f"{uid}-4", "unknown_agent")]
    assert await samples_of(app_client, a) == 2  # fresh at commit
    # The same samples as JSON from the same source are duplicates: one pipeline.
    as_json = [dict(zip(HEADER.split(","), r.split(","), strict=True)) for r in rows[1:3]]
    for s in as_json:
        s["value"] = float(s["value"])
    again = await app_client.post(
        "/v1/metrics", content=orjson.dumps({"source": f"csv-{uid}", "samples": as_json}),
        headers=ingest(f"csv-{uid}", "application/json"))
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)


@pytest.mark.parametrize(
    ("body", "line", "field"),
    [
        ("id,agent_id,metric,occurred_at\nx,a,orders,2026-11-20T10:00:00Z\n", "line 1", "line 1"),
        (f"{HEADER}\nx1,a,orders,1,2026-11-20T10:00:00Z\nx2,\"a,orders,1,2026-11-20T10:00Z\n",
         "line 3", "line 3"),
        (f"{HEADER}\nx1,a,orders,1,2026-11-20T10:00:00Z\nx2,a,order_amount,12,5,"
         "2026-11-20T10:00:00Z\n", "line 3", "line 3"),
        (f'{HEADER}\nx1,a,order_amount,"12,5",2026-11-20T10:00:00Z\n', "line 2",
         "line 2: value"),
        (f"{HEADER}\nx1,a b,orders,1,2026-11-20T10:00:00Z\n", "line 2", "line 2: agent_id"),
        (f"{HEADER}\nx1,a,orders,1,yesterday\n", "line 2", "line 2: occurred_at"),
    ],
    ids=["missing-column", "stray-quote", "comma-decimal", "quoted-comma-decimal",
         "bad-agent", "bad-time"],
)
async def test_an_unreadable_csv_is_refused_whole_naming_the_line(
    app_client: httpx.AsyncClient, uid: str, body: str, line: str, field: str
) -> None:
    response = await post(app_client, f"csv-{uid}", body, "text/csv")
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert line in problem["detail"]
    assert field in {e["field"] for e in problem["errors"]}, problem


async def test_ndjson_and_one_malformed_line(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    lines = [orjson.dumps({"id": f"{uid}-{i}", "agent_id": a, "metric": "orders", "value": 1,
                           "occurred_at": "2026-11-20T10:00:00Z"}) for i in range(3)]
    broken = b"\n".join([lines[0], lines[1], b'{"id": "x", "agent_id": ', lines[2]]) + b"\n"
    refused = await post(app_client, f"nd-{uid}", broken, "application/x-ndjson")
    assert refused.status_code == 422, refused.text
    assert [e["field"] for e in refused.json()["errors"]] == ["line 3"]
    assert await samples_of(app_client, a) == 0  # nothing of the file was stored
    fine = b"\r\n".join(lines) + b"\r\n\r\n"
    response = await post(app_client, f"nd-{uid}", fine, "application/x-ndjson")
    assert response.status_code == 200, response.text
    assert response.json() == {"accepted": 3, "duplicates": 0, "rejected": []}
    assert await samples_of(app_client, a) == 3


async def test_a_file_needs_its_source_and_json_names_it_in_the_body(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    no_source = await app_client.post("/v1/metrics", content=f"{HEADER}\n",
                                      headers=ingest("chat", "text/csv"))
    assert no_source.status_code == 422
    assert no_source.json()["errors"][0]["field"] == "source"
    both = await app_client.post("/v1/metrics?source=chat",
                                 content=b'{"source": "chat", "samples": []}',
                                 headers=ingest("chat", "application/json"))
    assert both.status_code == 422
    # An ingest key for one source cannot send a file as another.
    other = await post(app_client, "chat", f"{HEADER}\n", "text/csv", query="shop")
    assert other.status_code == 403


async def test_the_command_line_imports_a_file_with_progress(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any, database_url: str, tmp_path: Path
) -> None:
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    at = datetime.now(UTC).replace(microsecond=0).isoformat()
    path = tmp_path / "export.csv"
    rows = [f"{uid}-{i},{a},consultations,1,{at}" for i in range(25_000)]
    path.write_text("\n".join([HEADER, *rows, f"{uid}-bad,{a},csat,4,{at}"]) + "\n")
    env = {**os.environ, "CSPERF_DATABASE_URL": database_url}
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "metrics", "import", str(path), "--source",
        f"shop-{uid}", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert "accepted 25000, duplicates 0, rejected 1" in err.decode()
    assert f"line 25002\t{uid}-bad\tunknown_metric\t" in out.decode()
    period = at[:7]
    body = (await app_client.get(f"/v1/agents/{a}/kpis?period={period}", headers=ADMIN)).json()
    assert body["samples"] >= 25_000
    # A file that cannot be read imports nothing and says which line.
    broken = tmp_path / "broken.csv"
    broken.write_text(f"{HEADER}\n{uid}-z,{a},orders,\"1,2026\n")
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "service", "metrics", "import", str(broken), "--source",
        f"shop-{uid}", env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    _, err = await process.communicate()
    assert process.returncode == 1 and "line 2" in err.decode()
