"""Hostile input in every field of every operation of openapi.yaml: never a 5xx.

For each operation of the committed openapi.yaml, hypothesis takes a request that would be
accepted (path ids pinned to a seeded team with a published month and an open one, a body
built from the schema's examples and required fields, the credential of a role the route
admits), and puts one hostile value in one place: a path parameter, a query parameter, a body
field at any depth (list items and dictionary keys included). Hostile values are lone UTF-16
surrogates, NUL bytes, strings of 100,000 characters, and JSON of the wrong type (booleans,
numbers as text, huge integers, NaN, null, lists and objects where text is expected, and the
reverse). Every answer must be below 500 and name no database driver error, and the
connection must stay usable. (A value in a
URL is cut to 60,000 characters: httpx sends no URL past 65,536.)

Every kind of hostile value goes into every place of every operation: CSPERF_FUZZ_HOSTILE_EXAMPLES
examples of each (default 3; about 3,700 requests, 80 s here). Deterministic with
CSPERF_FUZZ_SEED (the same default seed as the schemathesis run; `random` explores further).
Run with `make test-fuzz`.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from tests.conftest import make_token
from tests.support.databases import fresh_database
from tests.support.scenario import make_team
from tests.support.server import ROOT, ServiceProcess

pytestmark = pytest.mark.fuzz

#: Examples of each kind of hostile value in each place of each operation.
EXAMPLES = int(os.environ.get("CSPERF_FUZZ_HOSTILE_EXAMPLES", "3"))
SEED = os.environ.get("CSPERF_FUZZ_SEED", "20261127")
LONG = 100_000
SPEC: dict[str, Any] = yaml.safe_load((ROOT / "openapi.yaml").read_text())
METHODS = ("get", "put", "post", "patch", "delete")
DRIVER_ERROR = re.compile(r"asyncpg|[A-Z][A-Za-z]+(Error|Exception)\b")
#: Streams answer for as long as the client listens: only their status is read.
STREAMING = {"/v1/events/stream"}


def _resolve(node: Any, depth: int = 0) -> Any:
    """Inline every $ref of a schema (bounded: schemas here are not recursive)."""
    if depth > 20:
        return {}
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str):
            target: Any = SPEC
            for part in ref.removeprefix("#/").split("/"):
                target = target[part]
            return _resolve(target, depth + 1)
        return {k: _resolve(v, depth + 1) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, depth + 1) for v in node]
    return node


OPERATIONS = [
    (method, path, _resolve(operation))
    for path, operations in SPEC["paths"].items()
    for method, operation in operations.items() if method in METHODS
]


def _alternatives(schema: dict[str, Any]) -> list[dict[str, Any]]:
    options = schema.get("anyOf") or schema.get("oneOf") or schema.get("allOf")
    if options:
        return [o for o in options if o.get("type") != "null"] or options
    return [schema]


def valid(schema: dict[str, Any], name: str = "") -> Any:
    """Return a value the schema takes, preferring its own examples."""
    if not isinstance(schema, dict):  # `true`: anything goes
        return "x"
    schema = _alternatives(schema)[0]
    for key in ("examples", "example"):
        if key in schema:
            value = schema[key]
            return value[0] if key == "examples" and isinstance(value, list) and value else value
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    if schema.get("default") is not None:
        return schema["default"]
    kind = schema.get("type")
    if kind == "object" or "properties" in schema:
        properties = schema.get("properties", {})
        return {key: valid(sub, key) for key, sub in properties.items()
                if key in schema.get("required", [])}
    if kind == "array":
        return [valid(schema.get("items", {}), name)] if schema.get("minItems") else []
    if kind == "integer":
        return max(int(schema.get("minimum", 1)), 1)
    if kind == "number":
        return float(schema.get("minimum", 1))
    if kind == "boolean":
        return False
    if schema.get("format") == "date-time":
        return "2026-11-20T10:00:00+09:00"
    if schema.get("format") == "date":
        return "2026-12-20"
    if name == "period":
        return "2026-11"
    if "pattern" in schema:  # ids
        return "x-1"
    return "x"


def body_places(schema: dict[str, Any], path: tuple[Any, ...] = (), depth: int = 0
                ) -> Iterator[tuple[Any, ...]]:
    """Yield every place of a body a value can go: fields at any depth, list items, and
    ("key",) markers where an object takes keys of the caller's choosing."""
    if depth > 5 or not isinstance(schema, dict):
        return
    for option in _alternatives(schema):
        if option.get("type") == "object" or "properties" in option:
            for key, sub in option.get("properties", {}).items():
                yield (*path, key)
                yield from body_places(sub, (*path, key), depth + 1)
            extra = option.get("additionalProperties")
            if isinstance(extra, dict):
                yield (*path, ("key", valid(extra)))
                yield (*path, "k")
                yield from body_places(extra, (*path, "k"), depth + 1)
        elif option.get("type") == "array":
            yield (*path, 0)
            yield from body_places(option.get("items", {}), (*path, 0), depth + 1)


def _put(body: Any, place: tuple[Any, ...], value: Any) -> Any:
    """Return the body with the value at the place, making the containers on the way."""
    if not place:
        return value
    head, rest = place[0], place[1:]
    if isinstance(head, tuple):  # ("key", item): the value is a key, holding a valid item
        container = dict(body) if isinstance(body, dict) else {}
        container[value if isinstance(value, str) else json.dumps(value)] = head[1]
        return container
    if isinstance(head, int):
        container_list = list(body) if isinstance(body, list) else []
        inner = container_list[0] if container_list else {}
        return [_put(inner, rest, value), *container_list[1:]]
    container = dict(body) if isinstance(body, dict) else {}
    container[head] = _put(container.get(head, {}), rest, value)
    return container


# -- the hostile values ----------------------------------------------------------------------

_SURROGATE = st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF)
#: Each kind of hostile value goes into every place; the first examples are the plainest.
HOSTILE: dict[str, st.SearchStrategy[Any]] = {
    "lone surrogate": st.one_of(
        st.sampled_from(["\ud800", "x\udfff", "\udc00\ud800"]),
        st.builds(lambda a, s, b: a + s + b, st.text(max_size=8), _SURROGATE,
                  st.text(max_size=8))),
    "NUL": st.one_of(
        st.sampled_from(["\x00", "a\x00b", "\x00" * 64]),
        st.builds(lambda a, b: a + "\x00" + b, st.text(max_size=8), st.text(max_size=8))),
    "long": st.sampled_from(["x" * LONG, "é" * LONG, "1" * LONG]),
    "wrong type": st.one_of(
        st.sampled_from([True, "80", None, [], {}, False, "", [[]], {"x": "\ud800"}, 2**70,
                         -(2**70), 1e308, float("nan"), float("inf"), 0.5, -1, "true"]),
        st.integers(), st.floats(), st.lists(st.integers(), max_size=3)),
}


#: httpx refuses a URL past 65,536 characters, so a long value in a URL is cut to this.
URL_VALUE_MAX = 60_000


def _url_text(value: Any) -> str:
    """Return a value as a URL's text: lone surrogates go as the bytes they would encode to."""
    text = value if isinstance(value, str) else json.dumps(value)
    return urllib.parse.quote(text.encode("utf-8", "surrogatepass"), safe="")[:URL_VALUE_MAX]


# -- the service -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def service() -> Iterator[tuple[ServiceProcess, dict[str, str]]]:
    """The service on a database of its own, with a seeded team; its pinned ids."""
    with pytest.MonkeyPatch.context() as patch, fresh_database("csperf_hostile") as url:
        patch.setenv("CSPERF_WEBHOOK_RUN_SENDER", "false")  # generated URLs are never called
        patch.setenv("CSPERF_RUN_SCHEDULER", "false")
        patch.setenv("CSPERF_AUTH_FAILURE_LIMIT", "0")
        process = ServiceProcess(url)
        process.start()
        try:
            yield process, asyncio.run(_seed(process.base_url))
        finally:
            process.stop()


async def _seed(base_url: str) -> dict[str, str]:
    """Make a team with a published month and an open one; return the path values to pin."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        team = await make_team(client, "hostile", 3)
        scores = {a: 40.0 + 15 * i for i, a in enumerate(team.agents)}
        await team.open("2026-10")
        await team.evaluate_all("2026-10", scores)
        assert (await team.close("2026-10")).status_code == 200
        assert (await team.publish("2026-10")).status_code == 200
        await team.open("2026-11")
    agent = team.agents[0]
    return {
        "team_id": team.team_id, "period": "2026-11", "agent_id": agent,
        "manager_id": team.manager_id, "scheme_id": "online-shop-cs", "version": "1",
        "rater_role": "self", "evaluator_id": team.manager_id, "topic": "calibration",
        "review_id": f"{team.team_id}:2026-10:{agent}", "stream_id": f"team:{team.team_id}",
        "key_id": "k-none", "subscription_id": "wh_0000000000000000",
    }


def _credentials(pinned: dict[str, str]) -> list[dict[str, str]]:
    """The credentials to try, most powerful first: each route gets the first it admits."""
    return [{"Authorization": f"Bearer {make_token(role, subject, source=source)}"}
            for role, subject, source in (
                ("admin", "fuzzer", None), ("manager", pinned["manager_id"], None),
                ("agent", pinned["agent_id"], None), ("ingest", "feed", "fuzz-feed"),
                ("rater", "rater-1", None))]


def _send(client: httpx.Client, method: str, path: str, url: str, body: Any,
          headers: dict[str, str]) -> tuple[int, str]:
    """Send one request; return its status and its body (a stream's only when refused)."""
    content = None if body is None else json.dumps(body).encode()
    if content is not None:
        headers = {**headers, "content-type": "application/json"}
    if path in STREAMING:
        headers = {**headers, "accept": "text/event-stream"}
        with client.stream(method.upper(), url, content=content, headers=headers) as response:
            return response.status_code, (response.read().decode()
                                          if response.status_code >= 300 else "")
    response = client.request(method.upper(), url, content=content, headers=headers)
    return response.status_code, response.text


@pytest.mark.parametrize(("method", "path", "operation"), OPERATIONS,
                         ids=[f"{m.upper()} {p}" for m, p, _ in OPERATIONS])
def test_hostile_input_is_never_a_server_error(
    service: tuple[ServiceProcess, dict[str, str]], method: str, path: str,
    operation: dict[str, Any],
) -> None:
    process, pinned = service
    parameters = [p for p in operation.get("parameters", []) if p["in"] in ("path", "query")]
    path_values = {p["name"]: pinned.get(p["name"]) or str(valid(p["schema"], p["name"]))
                   for p in parameters if p["in"] == "path"}
    content = operation.get("requestBody", {}).get("content", {})
    body_schema = content.get("application/json", {}).get("schema")
    baseline = valid(body_schema) if body_schema is not None else None
    places: list[tuple[str, Any]] = [(p["in"], p["name"]) for p in parameters]
    if body_schema is not None:
        places += [("body", place) for place in body_places(body_schema)]
        places.append(("body", ()))  # the whole body of the wrong type
    if not places:
        pytest.skip("the operation takes no input")

    with httpx.Client(base_url=process.base_url, timeout=60) as client:
        def url_with(values: dict[str, str]) -> str:
            url = path
            for name, value in values.items():
                url = url.replace("{" + name + "}", value)
            return url

        plain = url_with({k: urllib.parse.quote(v, safe="") for k, v in path_values.items()})
        headers = next(
            (h for h in _credentials(pinned)
             if _send(client, method, path, plain, baseline, h)[0] not in (401, 403)),
            _credentials(pinned)[0])

        run_settings = settings(
            max_examples=EXAMPLES, deadline=None, database=None, derandomize=False,
            suppress_health_check=list(HealthCheck))

        def probe(place: tuple[str, Any], value: Any) -> None:
            where, name = place
            values = {k: urllib.parse.quote(v, safe="") for k, v in path_values.items()}
            query = ""
            body = baseline
            if where == "path":
                values[name] = _url_text(value)
            elif where == "query":
                query = f"?{name}={_url_text(value)}"
            else:
                body = _put(baseline, name, value)
            status, text = _send(client, method, path, url_with(values) + query, body, headers)
            statuses[status] += 1
            case = f"{method.upper()} {path}: {where} {name!r} = {value!r:.200} -> {status}"
            assert status < 500, f"{case} {text[:500]}"
            # A refusal names the field, never the database driver's error class.
            assert not DRIVER_ERROR.search(text), f"{case} {text[:500]}"

        statuses: Counter[int] = Counter()
        def at(place: tuple[str, Any]) -> Callable[[Any], None]:
            def probe_place(value: Any) -> None:
                probe(place, value)
            return probe_place

        for place in places:
            for strategy in HOSTILE.values():
                run = run_settings(given(value=strategy)(at(place)))
                if SEED != "random":
                    run = seed(int(SEED))(run)
                run()
        print(f"{method.upper()} {path} as {headers['Authorization'][7:20]}...:"
              f" {dict(sorted(statuses.items()))}")
        # The connection pool is still good after all of it.
        assert client.get("/healthz").status_code == 200
