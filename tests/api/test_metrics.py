"""Live metrics through the API: ingestion contract, live KPIs, quarantine, late samples."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from service.domain import metrics as m
from service.domain.ids import ID_MAX
from service.main import create_app
from tests import conftest
from tests.conftest import bearer, make_token
from tests.support.databases import fresh_database
from tests.support.metrics import as_json, expected_totals, make_samples, stored_totals, wait_for
from tests.support.scenario import ADMIN, make_team

NOW = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
AT = "2026-11-20T10:00:00+09:00"


def ingest(source: str) -> dict[str, str]:
    return bearer(make_token("ingest", source=source))


def one(agent_id: str, sample_id: str, metric: str, value: Any, at: str = AT) -> dict[str, Any]:
    return {"id": sample_id, "agent_id": agent_id, "metric": metric, "value": value,
            "occurred_at": at}


async def post(client: httpx.AsyncClient, source: str, samples: list[dict[str, Any]],
               headers: dict[str, str] | None = None) -> httpx.Response:
    return await client.post("/v1/metrics", json={"source": source, "samples": samples},
                             headers=headers or ingest(source))


def kpis_url(agent_id: str, period: str = "2026-11") -> str:
    return f"/v1/agents/{agent_id}/kpis?period={period}"


async def test_a_bad_sample_in_the_middle_does_not_stop_the_rest(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    source = f"chat-{uid}"
    batch = [one(a, f"{uid}-{i}", "consultations", 1) for i in range(5)]
    batch[2]["value"] = -3
    response = await post(app_client, source, batch)
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["accepted"], body["duplicates"]) == (4, 0)
    assert [(r["index"], r["id"], r["reason"]) for r in body["rejected"]] == [
        (2, f"{uid}-2", "negative_value")]
    assert body["rejected"][0]["detail"]
    again = (await post(app_client, source, batch)).json()
    assert (again["accepted"], again["duplicates"], len(again["rejected"])) == (0, 4, 1)
    # The same id twice in one batch counts once.
    twice = [one(a, f"{uid}-x", "orders", 1), one(a, f"{uid}-x", "orders", 1)]
    response = (await post(app_client, source, twice)).json()
    assert (response["accepted"], response["duplicates"]) == (1, 1)


async def test_the_longest_ids_and_names_the_api_takes_are_stored_or_kept(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    # A batch is staged in a table whose text columns are bounded by the API's limits (in
    # characters): the longest values, at four bytes a character where the alphabet allows
    # it, go through, one stored and one kept; one character more is refused as a 422.
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    source = f"chat-{uid}".ljust(ID_MAX, "s")
    longest_id = "\U0001F600" * m.SAMPLE_ID_MAX
    stranger = f"nobody-{uid}".ljust(ID_MAX, "n")
    batch = [one(team.agents[0], longest_id, "orders", 1),
             one(stranger, "\U0001F601" * m.SAMPLE_ID_MAX, "\U0001F602" * m.METRIC_MAX, 1)]
    body = (await post(app_client, source, batch)).json()
    assert body["accepted"] == 1, body
    assert [(r["index"], r["id"], r["reason"]) for r in body["rejected"]] == [
        (1, batch[1]["id"], "unknown_agent")]
    again = (await post(app_client, source, batch)).json()
    assert (again["accepted"], again["duplicates"], len(again["rejected"])) == (0, 1, 1)
    kpis = (await app_client.get(kpis_url(team.agents[0]), headers=ADMIN)).json()
    assert kpis["samples"] == 1
    for too_long in ({"id": longest_id + "x"}, {"metric": "m" * (m.METRIC_MAX + 1)},
                     {"agent_id": stranger + "n"}):
        response = await post(app_client, source, [{**batch[0], **too_long}])
        assert response.status_code == 422, response.text
        assert next(iter(too_long)) in response.text
    response = await post(app_client, source + "s", [batch[0]], headers=ingest(source))
    assert response.status_code == 422 and "source" in response.text, response.text


async def test_kpis_include_a_batch_as_soon_as_it_is_answered(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    samples = [one(a, f"{uid}-1", "conversions", 1), one(a, f"{uid}-2", "consultations", 3),
               one(a, f"{uid}-3", "consultations", 1), one(a, f"{uid}-4", "lost_customers", 0),
               one(a, f"{uid}-5", "response_time_seconds", 10.0),
               one(a, f"{uid}-6", "response_time_seconds", 20.5)]
    assert (await post(app_client, f"chat-{uid}", samples)).status_code == 200
    # Read-your-writes: the very first read after the 200 has the batch, no waiting.
    response = await app_client.get(kpis_url(a), headers=team.agent(a))
    body = response.json()
    assert body["samples"] == 6, body
    assert body["agent_id"] == a and body["team_id"] == team.team_id
    assert body["period"] == "2026-11" and body["updated_at"] is not None
    kpis = body["kpis"]
    assert kpis["conversion_rate"] == 0.25
    assert kpis["churn_rate"] == 0.0
    assert kpis["avg_response_time_seconds"] == 15.25
    # Zero denominators are no data, never 0.
    for name in ("valid_order_ratio", "payment_ratio", "refund_ratio", "avg_order_value"):
        assert kpis[name] is None, name
    assert kpis["order_amount"] == 0
    assert body["totals"]["consultations"] == 4 and body["totals"]["orders"] == 0
    assert len(body["totals"]) == 10
    assert body["observations"]["response_time_seconds"] == 2


async def test_an_agent_without_samples_has_no_ratios(
    app_client: httpx.AsyncClient, uid: str
) -> None:
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    body = (await app_client.get(kpis_url(a, "2020-01"), headers=team.manager)).json()
    assert body["samples"] == 0 and body["updated_at"] is None
    assert body["kpis"]["order_amount"] == 0
    assert all(v is None for k, v in body["kpis"].items() if k != "order_amount")
    current = (await app_client.get(f"/v1/agents/{a}/kpis", headers=team.manager)).json()
    assert len(current["period"]) == 7  # the current month of the team when none is given


async def test_the_month_follows_the_teams_time_zone(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1, timezone="Asia/Seoul")
    a = team.agents[0]
    samples = [
        one(a, f"{uid}-1", "orders", 1, "2026-11-01T00:30:00+09:00"),
        one(a, f"{uid}-2", "orders", 2, "2026-10-31T23:59:00+09:00"),
        one(a, f"{uid}-3", "orders", 4, "2026-10-31T15:30:00Z"),  # 00:30 on the 1st in Seoul
    ]
    assert (await post(app_client, f"chat-{uid}", samples)).json()["accepted"] == 3
    november = await wait_for(app_client, kpis_url(a, "2026-11"), ADMIN,
                              lambda b: b["samples"] == 2)
    october = await wait_for(app_client, kpis_url(a, "2026-10"), ADMIN,
                             lambda b: b["samples"] == 1)
    assert november["totals"]["orders"] == 5
    assert october["totals"]["orders"] == 2


async def test_more_than_ten_thousand_samples_is_413(app_client: httpx.AsyncClient) -> None:
    sample = one("a-1", "s", "orders", 1)
    response = await post(app_client, "chat", [sample] * 10_001)
    assert response.status_code == 413
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "samples"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"source": "chat", "samples": [one("a", "1", "orders", 1)] * 3
          + [one("a", "4", "orders", 1, "2026-11-03T09:15:02")]}, "samples[3].occurred_at"),
        ({"samples": []}, "source"),
        ({"source": "chat", "samples": [one("a", "1", "orders", "12")]}, "samples[0].value"),
        ({"source": "chat", "samples": [one("a", "1", "orders", True)]}, "samples[0].value"),
        ({"source": "chat", "samples": [one("a", "1", "orders", 1, "yesterday")]},
         "samples[0].occurred_at"),
        ({"source": "chat", "samples": [{**one("a", "1", "orders", 1), "extra": 1}]},
         "samples[0].extra"),
        ({"source": "chat", "samples": [one("a", "", "orders", 1)]}, "samples[0].id"),
        ({"source": "chat", "samples": [one("a b", "1", "orders", 1)]}, "samples[0].agent_id"),
        ({"source": "chat", "samples": [one("a", "1\u0000", "orders", 1)]}, "samples[0].id"),
        ({"source": "chat", "samples": {"id": "1"}}, "samples"),
        ({"source": "no spaces", "samples": []}, "source"),
        ([], "body"),
    ],
)
async def test_malformed_bodies_are_422_naming_the_field(
    app_client: httpx.AsyncClient, body: Any, field: str
) -> None:
    response = await app_client.post("/v1/metrics", json=body, headers=ingest("chat"))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert field in {e["field"] for e in response.json()["errors"]}, response.json()


@pytest.mark.parametrize("raw", [b"", b"{", b"not json", b'{"source": "chat", "samples": [}',
                                 b"\xff\xfe"])
async def test_unparseable_bodies_are_422(app_client: httpx.AsyncClient, raw: bytes) -> None:
    response = await app_client.post("/v1/metrics", content=raw,
                                     headers={**ingest("chat"),
                                              "content-type": "application/json"})
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "body"


async def test_non_finite_and_huge_values_are_rejected_not_500(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    a = team.agents[0]
    raw = (b'{"source": "chat-' + uid.encode() + b'", "samples": ['
           b'{"id": "1", "agent_id": "' + a.encode() + b'", "metric": "orders", "value": NaN,'
           b' "occurred_at": "2026-11-20T10:00:00Z"},'
           b'{"id": "2", "agent_id": "' + a.encode() + b'", "metric": "orders", "value": 1e400,'
           b' "occurred_at": "2026-11-20T10:00:00Z"},'
           b'{"id": "3", "agent_id": "' + a.encode() + b'", "metric": "order_amount",'
           b' "value": 1e13, "occurred_at": "2026-11-20T10:00:00Z"},'
           b'{"id": "4", "agent_id": "' + a.encode() + b'", "metric": "orders", "value": 1,'
           b' "occurred_at": "2026-12-20T10:00:00Z"},'
           b'{"id": "5", "agent_id": "' + a.encode() + b'", "metric": "orders", "value": 1,'
           b' "occurred_at": "0001-01-01T00:00:00+14:00"}]}')
    response = await app_client.post("/v1/metrics", content=raw,
                                     headers={**ingest(f"chat-{uid}"),
                                              "content-type": "application/json"})
    assert response.status_code == 200, response.text
    assert [r["reason"] for r in response.json()["rejected"]] == [
        "non_finite_value", "non_finite_value", "value_too_large", "in_future", "too_old"]
    kept = (await app_client.get(f"/v1/metrics/quarantine?source=chat-{uid}",
                                 headers=ADMIN)).json()["items"]
    assert [i["raw"]["value"] for i in kept] == ["nan", "inf", 1e13, 1.0, 1.0]
    # A bad value still belongs to its agent's team and month; a time out of range to none.
    assert [(i["team_id"], i["period"]) for i in kept] == [(team.team_id, "2026-11")] * 3 + [
        (None, None), (None, None)]


async def test_ingest_credentials_push_only_for_their_source(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any,
    key_headers: Callable[..., Awaitable[dict[str, str]]],
    token_headers: Callable[..., dict[str, str]],
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    batch = [one(team.agents[0], f"{uid}-1", "orders", 1)]
    other = await post(app_client, f"chat-{uid}", batch, headers=ingest(f"crm-{uid}"))
    assert other.status_code == 403
    assert other.json()["type"].endswith("/out-of-scope")
    key = await key_headers("ingest", source=f"chat-{uid}")
    assert (await post(app_client, f"chat-{uid}", batch, headers=key)).status_code == 200
    assert (await post(app_client, f"crm-{uid}", batch, headers=key)).status_code == 403
    for role in ("agent", "manager", "reader", "rater"):
        refused = await post(app_client, f"chat-{uid}", batch, headers=token_headers(role))
        assert refused.status_code == 403, role
    admin = await post(app_client, f"chat-{uid}", batch, headers=ADMIN)
    assert admin.status_code == 200 and admin.json()["duplicates"] == 1


async def test_who_may_read_kpis(
    app_client: httpx.AsyncClient, uid: str, token_headers: Callable[..., dict[str, str]]
) -> None:
    team = await make_team(app_client, uid, 2)
    other = await make_team(app_client, uid + "o", 1)
    a, b = team.agents
    agent_url = kpis_url(a)
    team_url = f"/v1/teams/{team.team_id}/kpis?period=2026-11"
    allowed = [team.agent(a), team.manager, ADMIN, token_headers("reader")]
    refused = [team.agent(b), other.manager, other.agent(other.agents[0])]
    for headers in allowed:
        assert (await app_client.get(agent_url, headers=headers)).status_code == 200
    for headers in refused:
        assert (await app_client.get(agent_url, headers=headers)).status_code == 403
    for headers in [team.agent(b), team.manager, ADMIN]:
        assert (await app_client.get(team_url, headers=headers)).status_code == 200
    for headers in [other.manager, other.agent(other.agents[0])]:
        assert (await app_client.get(team_url, headers=headers)).status_code == 403
    bad = await app_client.get(kpis_url(a, "2026-13"), headers=ADMIN)
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "period"
    missing = await app_client.get(kpis_url(f"nobody-{uid}"), headers=ADMIN)
    assert missing.status_code == 404


async def test_exactly_once_over_http(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    ctx = app_client.app.state.ctx  # type: ignore[attr-defined]
    team = await make_team(app_client, uid, 4)
    samples = make_samples(uid, team.agents, 3_000, datetime(2026, 11, 2, tzinfo=UTC),
                           timedelta(days=20), seed=11)
    sends = [as_json(s) for s in samples] * 2
    random.Random(5).shuffle(sends)
    batches = [sends[i:i + 500] for i in range(0, len(sends), 500)]
    responses = await asyncio.gather(*(post(app_client, f"chat-{uid}", b) for b in batches))
    bodies = [r.json() for r in responses]
    assert sum(b["accepted"] for b in bodies) == 3_000
    assert sum(b["duplicates"] for b in bodies) == 3_000
    assert await stored_totals(ctx.db, team.team_id, "2026-11") == expected_totals(samples)
    team_kpis = (await app_client.get(f"/v1/teams/{team.team_id}/kpis?period=2026-11",
                                      headers=team.manager)).json()
    assert team_kpis["samples"] == 3_000 and team_kpis["agents"] == 4
    assert {f["metric"] for f in team_kpis["feeds"]} <= set(team_kpis["totals"])


async def test_quarantine_listing_and_replay(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any,
    token_headers: Callable[..., dict[str, str]],
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    newcomer = f"new-{uid}"
    source = f"chat-{uid}"
    batch = [one(newcomer, f"{uid}-{i}", "orders", i + 1) for i in range(3)]
    rejected = (await post(app_client, source, batch)).json()["rejected"]
    assert [r["reason"] for r in rejected] == ["unknown_agent"] * 3
    listing = await app_client.get(f"/v1/metrics/quarantine?source={source}&limit=2",
                                   headers=token_headers("reader"))
    assert listing.status_code == 200
    page = listing.json()
    assert [i["id"] for i in page["items"]] == [f"{uid}-0", f"{uid}-1"]
    assert page["items"][0]["reason"] == "unknown_agent" and page["next"]
    rest = (await app_client.get(f"/v1/metrics/quarantine?source={source}&limit=2"
                                 f"&after={page['next']}", headers=ADMIN)).json()
    assert [i["id"] for i in rest["items"]] == [f"{uid}-2"] and rest["next"] is None
    csv = await app_client.get(f"/v1/metrics/quarantine?source={source}",
                               headers={**ADMIN, "accept": "text/csv"})
    assert csv.headers["content-type"].startswith("text/csv")
    assert len(csv.text.strip().splitlines()) == 4
    bad_cursor = await app_client.get("/v1/metrics/quarantine?after=zzz", headers=ADMIN)
    assert bad_cursor.status_code == 422

    await app_client.put(f"/v1/agents/{newcomer}", json={"name": "N", "team_id": team.team_id},
                         headers=ADMIN)
    refused = await app_client.post("/v1/metrics/quarantine/replay", json={"source": source},
                                    headers=team.manager)
    assert refused.status_code == 403
    replay = await app_client.post("/v1/metrics/quarantine/replay",
                                   json={"source": source, "ids": [f"{uid}-0", f"{uid}-1"]},
                                   headers=ADMIN)
    assert replay.status_code == 200, replay.text
    assert replay.json() == {"replayed": 2, "already_stored": 0, "still_rejected": []}
    body = await wait_for(app_client, kpis_url(newcomer), ADMIN, lambda b: b["samples"] == 2)
    assert body["totals"]["orders"] == 3
    pending = (await app_client.get(f"/v1/metrics/quarantine?source={source}",
                                    headers=ADMIN)).json()["items"]
    assert [i["id"] for i in pending] == [f"{uid}-2"]
    done = (await app_client.get(f"/v1/metrics/quarantine?source={source}&status=accepted",
                                 headers=ADMIN)).json()["items"]
    assert len(done) == 2 and all(i["replayed_at"] and i["resolved_by"] for i in done)


async def test_late_samples_are_kept_and_never_change_a_published_result(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 3, timezone="Asia/Seoul")
    period = "2026-10"
    source = f"chat-{uid}"
    a, b, c = team.agents
    october = "2026-10-15T12:00:00+09:00"
    metrics = {a: (2, 10), b: (1, 10), c: (3, 10)}  # conversions, consultations
    batch = []
    for agent, (conversions, consultations) in metrics.items():
        batch += [one(agent, f"{uid}-{agent}-conv", "conversions", conversions, october),
                  one(agent, f"{uid}-{agent}-cons", "consultations", consultations, october)]
    assert (await post(app_client, source, batch)).json()["accepted"] == 6
    await team.open(period)
    await team.evaluate_all(period, {a: 80, b: 80, c: 80})
    assert (await team.close(period)).status_code == 200
    card = (await app_client.get(team.url(period, f"/scorecards/{a}"),
                                 headers=team.manager)).json()
    # Scoring took the ingested samples: 2 / 10 against target 0.30 and floor 0.05.
    conversion = card["kpis"]["conversion_rate"]
    assert conversion["value"] == pytest.approx(0.2)
    assert conversion["attainment"] == pytest.approx(60.0)
    assert card["totals"]["consultations"] == 10
    assert (await team.publish(period)).status_code == 200
    before = await team.ranking(period)
    assert [e["agent_id"] for e in before["entries"]] == [c, a, b]  # type: ignore[index]

    late = [one(b, f"{uid}-late", "conversions", 9, "2026-10-20T12:00:00+09:00"),
            batch[0]]  # and a retry of a sample accepted before the close
    body = (await post(app_client, source, late)).json()
    assert (body["accepted"], body["duplicates"]) == (0, 1)
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [(0, "period_closed")]
    assert "published" in body["rejected"][0]["detail"]
    kept = (await app_client.get(f"/v1/metrics/quarantine?source={source}"
                                 "&reason=period_closed", headers=ADMIN)).json()["items"]
    assert [k["id"] for k in kept] == [f"{uid}-late"]
    replay = (await app_client.post("/v1/metrics/quarantine/replay", json={"source": source},
                                    headers=ADMIN)).json()
    assert [r["reason"] for r in replay["still_rejected"]] == ["period_closed"]
    assert await team.ranking(period) == before
    live = (await app_client.get(kpis_url(b, period), headers=ADMIN)).json()
    assert live["totals"]["conversions"] == 1
    # November is still open: a sample for it is accepted.
    november = [one(b, f"{uid}-nov", "conversions", 1, "2026-11-20T12:00:00+09:00")]
    assert (await post(app_client, source, november)).json()["accepted"] == 1


async def test_quiet_feeds_show_on_the_open_cycle(
    app_client: httpx.AsyncClient, uid: str, app_clock: Any
) -> None:
    app_clock.set(NOW)
    team = await make_team(app_client, uid, 1)
    await team.open("2026-12")
    a = team.agents[0]

    async def quiet() -> dict[str, Any]:
        cycle = (await app_client.get(team.url("2026-12"), headers=team.manager)).json()
        return {w["metric"]: w for w in cycle["warnings"] if w["kind"] == "metric_feed_quiet"}

    assert await quiet() == {}  # just opened: the feeds have the quiet time to start
    app_clock.set(NOW + timedelta(hours=3))
    flagged = await quiet()
    assert len(flagged) == 10 and flagged["orders"]["last_received_at"] is None
    sample = [one(a, f"{uid}-1", "consultations", 1, (NOW + timedelta(hours=3)).isoformat())]
    assert (await post(app_client, f"chat-{uid}", sample)).json()["accepted"] == 1
    await wait_for(app_client, f"/v1/teams/{team.team_id}/kpis?period=2026-11", ADMIN,
                   lambda body: len(body["feeds"]) == 1)
    flagged = await quiet()
    assert "consultations" not in flagged and "orders" in flagged
    app_clock.set(NOW + timedelta(hours=6))
    flagged = await quiet()
    assert flagged["consultations"]["last_received_at"] == orjson.loads(
        orjson.dumps(NOW + timedelta(hours=3)))


@pytest.mark.parametrize(
    ("method", "url", "body"),
    [
        ("GET", "/v1/agents/a%00b/kpis", None),
        ("GET", "/v1/agents/a/kpis?period=2026-1%00", None),
        ("GET", "/v1/teams/t%00/kpis", None),
        ("GET", "/v1/metrics/quarantine?source=%00&agent_id=%00&reason=%00", None),
        ("GET", "/v1/metrics/quarantine?limit=0", None),
        ("GET", "/v1/metrics/quarantine?status=lost", None),
        ("POST", "/v1/metrics/quarantine/replay", {"ids": ["\u0000"], "source": "\u0000"}),
        ("POST", "/v1/metrics/quarantine/replay", {"limit": 0}),
        ("POST", "/v1/metrics/quarantine/replay", {"unknown": 1}),
    ],
)
async def test_odd_input_is_never_a_500(
    app_client: httpx.AsyncClient, method: str, url: str, body: Any
) -> None:
    response = await app_client.request(method, url, json=body, headers=ADMIN)
    assert response.status_code < 500, response.text
    assert response.status_code in (200, 404, 422), response.text


@pytest.fixture
def empty_store_url() -> Iterator[str]:
    with fresh_database("csperf_empty_store") as url:
        yield url


async def test_the_first_batch_into_an_empty_store_is_answered(empty_store_url: str) -> None:
    # A new installation: no team, no agent, no event at all. Its first batch names agents
    # nobody registered yet; they are kept with their reason, never a 500.
    app = create_app(conftest.test_settings(run_scheduler=False, db_pool_size=4),
                     database_url=empty_store_url, migrate_on_start=False)
    samples = [one("a-unknown", "s-1", "orders", 1), one("a-unknown", "s-2", "orders", 2)]
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            first = await post(client, "first-feed", samples)
            again = await post(client, "first-feed", samples)
    assert first.status_code == 200, first.text
    assert first.json()["accepted"] == 0
    assert [(r["index"], r["reason"]) for r in first.json()["rejected"]] == [
        (0, "unknown_agent"), (1, "unknown_agent")]
    assert again.status_code == 200, again.text
    assert again.json()["rejected"] == first.json()["rejected"]
