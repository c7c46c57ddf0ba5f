"""openapi.yaml is generated from the app and committed; it must not drift."""

from __future__ import annotations

from pathlib import Path

from service.openapi import render

COMMITTED = Path(__file__).resolve().parents[2] / "openapi.yaml"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.read_text() == render(), (
        "openapi.yaml is out of date: run `make openapi` and commit it"
    )
