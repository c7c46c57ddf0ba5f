"""The global event feed: paging while 20 writers append never skips or repeats; filters; CSV."""

from __future__ import annotations

import asyncio
import csv
import io
import random
from datetime import UTC, datetime
from typing import Any

import httpx
import orjson

from service.store.database import Database
from service.store.errors import ConcurrencyError
from service.store.event_store import Cursor, NewEvent, append, stream_version
from tests.support.scenario import ADMIN

NOW = datetime(2026, 11, 3, tzinfo=UTC)
WRITERS = 20
TRANSACTIONS_EACH = 25


class RolledBack(Exception):
    """Raised on purpose to abandon a transaction."""


async def _writer(db: Database, kind: str, seed: int) -> int:
    rng = random.Random(seed)
    committed = 0
    for _ in range(TRANSACTIONS_EACH):
        stream = f"{kind}:{rng.randrange(30)}"
        count = rng.randint(1, 3)
        try:
            async with db.connection() as conn, conn.transaction():
                version = await stream_version(conn, stream)
                await append(
                    conn, stream,
                    [NewEvent("FeedTested" if rng.random() < 0.5 else "FeedChecked",
                              {"writer": seed, "i": i}) for i in range(count)],
                    expected_version=version, metadata={}, recorded_at=NOW,
                )
                # Commit late, out of position order, now and then; roll back some.
                await asyncio.sleep(rng.random() * 0.02)
                if rng.random() < 0.2:
                    raise RolledBack
            committed += count
        except (RolledBack, ConcurrencyError):
            pass
    return committed


async def _page_until(
    client: httpx.AsyncClient, params: dict[str, Any], done: asyncio.Event,
    keep: Any = None, expected: list[int] | None = None, early: list[int] | None = None,
) -> list[dict[str, Any]]:
    """Page the feed while writers run, then until nothing more comes."""
    seen: list[dict[str, Any]] = []
    after: str | None = None
    quiet = 0
    for _ in range(20_000):
        query = {**params, **({"after": after} if after else {})}
        response = await client.get("/v1/events", params=query, headers=ADMIN)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["next"], "the feed always returns where to resume"
        assert response.headers["link"].endswith('rel="next"')
        items = body["items"]
        seen += [i for i in items if keep is None or keep(i)]
        if early is not None and not done.is_set():
            early[0] = len(seen)
        after = body["next"]
        if items:
            quiet = 0
            continue
        if done.is_set():
            quiet += 1
            if quiet > 5 and (expected is None or len(seen) >= expected[0]):
                break
        await asyncio.sleep(0.005)
    return seen


async def test_paging_while_twenty_writers_append_never_skips_or_repeats(
    app_client: httpx.AsyncClient, db: Database, uid: str
) -> None:
    kind = f"feed{uid}"
    done = asyncio.Event()
    expected_count: list[int] = [10**9]
    expected_tested: list[int] = [10**9]
    early = [0]

    async def writers() -> int:
        try:
            return sum(await asyncio.gather(*[_writer(db, kind, s) for s in range(WRITERS)]))
        finally:
            async with db.connection() as conn:
                expected_count[0] = await conn.fetchval(
                    "SELECT count(*) FROM event WHERE stream_type = $1", kind)
                expected_tested[0] = await conn.fetchval(
                    "SELECT count(*) FROM event WHERE stream_type = $1 AND type = 'FeedTested'",
                    kind)
            done.set()

    committed, filtered, by_type, unfiltered = await asyncio.gather(
        writers(),
        _page_until(app_client, {"stream_type": kind, "limit": 7}, done,
                    expected=expected_count, early=early),
        _page_until(app_client, {"stream_type": kind, "type": "FeedTested", "limit": 5}, done,
                    expected=expected_tested),
        _page_until(app_client, {"limit": 50}, done,
                    keep=lambda i: i["stream_id"].startswith(kind + ":"),
                    expected=expected_count),
    )
    async with db.connection() as conn:
        stored = await conn.fetch(
            "SELECT event_id::text AS id, type FROM event WHERE stream_type = $1"
            " ORDER BY tx_id, position", kind)
    assert committed == len(stored) > 100
    assert early[0] > 0, "the pager read nothing while the writers were appending"
    order = [r["id"] for r in stored]
    for name, pages in (("filtered", filtered), ("unfiltered", unfiltered)):
        ids = [i["event_id"] for i in pages]
        assert len(ids) == len(set(ids)), f"{name}: an event was repeated"
        assert ids == order, f"{name}: the pages skipped events or changed their order"
    assert [i["event_id"] for i in by_type] == [r["id"] for r in stored
                                                 if r["type"] == "FeedTested"]
    # Within a stream, versions follow each other.
    versions: dict[str, int] = {}
    for item in filtered:
        assert item["version"] == versions.get(item["stream_id"], 0) + 1
        versions[item["stream_id"]] = item["version"]


async def test_a_filtered_feed_moves_past_what_it_skips(
    app_client: httpx.AsyncClient, db: Database, uid: str
) -> None:
    async with db.connection() as conn:
        await append(conn, f"skip{uid}:1", [NewEvent("Skipped", {})], expected_version=0,
                     metadata={}, recorded_at=NOW)
        tail = await conn.fetchrow("SELECT tx_id, position FROM event WHERE stream_type = $1",
                                   f"skip{uid}")
    # The feed passes an event once every older transaction has ended (a projection's batch
    # may still be open): ask until the horizon has moved past ours.
    for _ in range(200):
        body = (await app_client.get("/v1/events", params={"stream_type": f"none{uid}"},
                                     headers=ADMIN)).json()
        assert body["items"] == []
        if Cursor.decode(body["next"]) >= Cursor(tail["tx_id"], tail["position"]):
            break
        await asyncio.sleep(0.05)
    # Nothing matched, but the cursor passed the events it looked at.
    assert Cursor.decode(body["next"]) >= Cursor(tail["tx_id"], tail["position"])


async def test_bad_parameters_are_422_naming_them(app_client: httpx.AsyncClient) -> None:
    cases = {"after=not-a-cursor": "after", "limit=0": "limit", "limit=1001": "limit",
             "type=%3Dbad": "type", "stream_type=a%20b": "stream_type"}
    for query, field in cases.items():
        response = await app_client.get(f"/v1/events?{query}", headers=ADMIN)
        assert response.status_code == 422, (query, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert field in [e["field"] for e in response.json()["errors"]], query


async def test_feed_csv_neutralises_hostile_values_and_round_trips(
    app_client: httpx.AsyncClient, db: Database, uid: str
) -> None:
    hostile = {"name": '=HYPERLINK("http://x","y")', "note": 'comma, "quote"\nnewline',
               "at": "@SUM(A1)", "plus": "+1", "minus": "-2", "unicode": "éé 漢字"}
    stream = f"=csv{uid}:1"
    async with db.connection() as conn:
        await append(conn, stream, [NewEvent(f"Hostile{uid}", hostile)], expected_version=0,
                     metadata={"actor": {"subject": "-1+1"}}, recorded_at=NOW)
    for _ in range(200):  # visible once older transactions (projection batches) have ended
        response = await app_client.get("/v1/events", params={"type": f"Hostile{uid}"},
                                        headers={**ADMIN, "Accept": "text/csv"})
        if response.text.count("\n") > 1:
            break
        await asyncio.sleep(0.05)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert response.headers["x-next-cursor"] and 'rel="next"' in response.headers["link"]
    assert response.text.startswith("position,cursor,event_id,stream_id,")
    rows = list(csv.DictReader(io.StringIO(response.text, newline="")))
    assert len(rows) == 1
    row = rows[0]
    assert row["stream_id"] == "'" + stream  # would be a formula: neutralised
    assert orjson.loads(row["data"]) == hostile  # JSON text: starts with {, round-trips
    assert orjson.loads(row["metadata"]) == {"actor": {"subject": "-1+1"}}


async def test_a_streams_history_pages(app_client: httpx.AsyncClient, db: Database,
                                       uid: str) -> None:
    stream = f"hist{uid}:1"
    async with db.connection() as conn:
        await append(conn, stream, [NewEvent("Step", {"i": i}) for i in range(5)],
                     expected_version=0, metadata={}, recorded_at=NOW)
    seen, after = [], None
    while True:
        params = {"limit": 2, **({"after": after} if after else {})}
        response = await app_client.get(f"/v1/streams/{stream}/events", params=params,
                                        headers=ADMIN)
        body = response.json()
        assert body["version"] == 5
        seen += [e["data"]["i"] for e in body["items"]]
        after = body["next"]
        if after is None:
            assert "link" not in response.headers
            break
        assert 'rel="next"' in response.headers["link"]
    assert seen == [0, 1, 2, 3, 4]
    missing = await app_client.get(f"/v1/streams/none{uid}/events", headers=ADMIN)
    assert missing.status_code == 404
