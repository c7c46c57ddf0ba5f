"""A pooled connection left mid-protocol by a terminated backend counts as the database away.

asyncpg says so only in the text of a bare InternalClientError (service/store/database.py says
why); these tests pin that text to the installed asyncpg's source.
"""

from __future__ import annotations

import re
from pathlib import Path

import asyncpg
from asyncpg.exceptions import InternalClientError

from service.store.database import _ERROR_CONSUME, _follows_a_lost_server

PROTOCOL = Path(asyncpg.__file__).parent / "protocol"


def test_asyncpg_still_words_the_state_as_the_check_reads_it() -> None:
    states = (PROTOCOL / "coreproto.pxd").read_text()
    assert re.search(rf"PROTOCOL_ERROR_CONSUME = {_ERROR_CONSUME}\b", states)
    assert "'another operation ({}) is in progress'" in (PROTOCOL / "coreproto.pyx").read_text()


def test_only_the_error_consuming_state_or_a_lost_connection_is_the_server_away() -> None:
    consuming = InternalClientError(
        f"cannot switch to state 14; another operation ({_ERROR_CONSUME}) is in progress")
    assert _follows_a_lost_server(consuming)
    assert not _follows_a_lost_server(InternalClientError(
        "cannot switch to state 14; another operation (12) is in progress"))
    after_a_reset = InternalClientError("cannot switch to state 14; protocol is in the"
                                        ' "failed" state')
    after_a_reset.__cause__ = ConnectionResetError()
    assert _follows_a_lost_server(after_a_reset)
