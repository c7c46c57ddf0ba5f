"""Request ids are unique within a process and across forked workers."""

from __future__ import annotations

import os

from service.api.middleware import _new_request_id


def test_request_ids_are_unique_and_32_characters() -> None:
    ids = [_new_request_id() for _ in range(1000)]
    assert len(set(ids)) == len(ids)
    assert all(len(i) == 32 and i.isprintable() for i in ids)


def test_a_forked_worker_draws_its_own_prefix() -> None:
    parent = _new_request_id()
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: answer with its first id and leave at once
        os.write(write, _new_request_id().encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child = os.read(read, 64).decode()
    os.close(read)
    assert len(child) == 32
    assert child[:16] != parent[:16]
