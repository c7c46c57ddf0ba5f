"""Keys and webhooks are commands like any other: they go through ``execute``, their events
are registered (``decode`` reads them back), and each write says the position it wrote."""

from __future__ import annotations

from service.commands import keys as key_commands
from service.commands import webhooks as webhook_commands
from service.commands.base import Caller, execute
from service.context import ServiceContext
from service.domain import directory as d
from service.domain import webhooks as w
from service.domain.events import decode
from service.domain.principal import key_stream
from service.store import keys
from service.store import webhooks as store
from service.store.database import Database
from service.store.event_store import read_stream
from tests import conftest

CALLER = Caller({"actor": {"subject": "tester", "role": "admin", "key_id": None}})


def _ctx(db: Database) -> ServiceContext:
    return ServiceContext(settings=conftest.test_settings(), db=db)


async def test_a_write_returns_the_position_it_wrote(db: Database, uid: str) -> None:
    cmd = d.PutTeam(team_id=f"t-{uid}", name="Team")
    _, result = await execute(_ctx(db), CALLER, d.team_stream(cmd.team_id), d.evolve_team,
                              lambda state: d.decide_put_team(state, cmd))
    assert result is not None
    async with db.connection() as conn:
        stored = await read_stream(conn, d.team_stream(cmd.team_id))
    assert result.position == stored[-1].position > 0


async def test_key_commands_write_the_event_and_the_row_together(db: Database, uid: str) -> None:
    ctx = _ctx(db)
    issued = await key_commands.issue(ctx, CALLER, role="agent", subject=f"a-{uid}", source=None,
                                      name="test", created_by="tester")
    assert await keys.find_active(db, issued.key) == issued.record
    first = await key_commands.revoke(ctx, CALLER, issued.record.key_id, revoked_by="tester")
    again = await key_commands.revoke(ctx, CALLER, issued.record.key_id, revoked_by="tester")
    assert first is not None and first[1] and again is not None and not again[1]
    assert await keys.find_active(db, issued.key) is None
    async with db.connection() as conn:
        events = await read_stream(conn, key_stream(issued.record.key_id))
    decoded = [decode(e.type, e.schema_version, e.data) for e in events]
    assert [e.type for e in decoded] == ["ApiKeyIssued", "ApiKeyRevoked"]
    assert all(getattr(e, "key_id", None) == issued.record.key_id for e in decoded)
    assert await key_commands.revoke(ctx, CALLER, f"none{uid}"[:16], revoked_by="t") is None


async def test_webhook_commands_write_the_event_and_the_row_together(
    db: Database, uid: str
) -> None:
    ctx = _ctx(db)
    url = f"https://example.com/hooks/{uid}"
    subscription, secret = await webhook_commands.create(
        ctx, CALLER, url=url, event_types=["CyclePublished"], stream_types=None,
        description=None, start=None, created_by="tester")
    assert secret.startswith(store.SECRET_PREFIX) and subscription.status == "active"
    deleted = await webhook_commands.delete(ctx, CALLER, subscription.subscription_id,
                                            deleted_by="tester")
    again = await webhook_commands.delete(ctx, CALLER, subscription.subscription_id,
                                          deleted_by="tester")
    assert deleted is not None and deleted[1] and deleted[0].status == "deleted"
    assert again is not None and not again[1]
    async with db.connection() as conn:
        events = await read_stream(conn, w.subscription_stream(subscription.subscription_id))
    decoded = [decode(e.type, e.schema_version, e.data) for e in events]
    assert [type(e) for e in decoded] == [w.WebhookSubscribed, w.WebhookDeleted]
    assert isinstance(decoded[0], w.WebhookSubscribed)
    assert decoded[0].url_origin == "https://example.com" and url not in str(events[0].data)
