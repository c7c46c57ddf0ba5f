"""Every problem can be encoded, whatever the caller sent (issue 17)."""

from __future__ import annotations

import json

from service.api.problems import problem_response
from service.domain.text import unusable, unusable_strings


def test_a_problem_echoing_lone_surrogates_encodes_them_as_text() -> None:
    response = problem_response(
        None, 422, "unknown criterion 'x\ud800'",
        errors=[{"field": "scores.x\udfff", "reason": "unknown"}], keys={"k\ud800": ["\ud834"]})
    body = json.loads(response.body)
    assert body["detail"] == "unknown criterion 'x\\ud800'"
    assert body["errors"][0]["field"] == "scores.x\\udfff"
    assert body["keys"] == {"k\\ud800": ["\\ud834"]}


def test_a_problem_keeps_real_characters() -> None:
    body = json.loads(problem_response(None, 404, "no team 'Équipe 😀'").body)
    assert body["detail"] == "no team 'Équipe 😀'"


def test_unusable_text_is_nul_or_a_lone_surrogate() -> None:
    assert unusable("plain, Ünïcode 😀") is None
    assert unusable("a\x00b") is not None
    assert unusable("a\ud800") is not None
    found = dict(unusable_strings({"ok": ["x", {"k\udc00": 1, "v": "\x00"}]}))
    assert set(found) == {("ok", 1, "k\udc00"), ("ok", 1, "v")}
