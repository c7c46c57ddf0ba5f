"""Bodies of POST /v1/metrics: from bytes to (source, samples), or a 4xx naming the field.

Tens of thousands of samples arrive a second, so a well-formed JSON batch takes a fast path:
orjson decodes it and one loop checks each sample's shape with plain type checks and compiled
patterns (measured against pydantic-core's TypedDict validation and msgspec in BENCHMARKS.md,
ingest suite). Anything that path does not accept as it stands (a missing field, a wrong type, a
NaN, an unusual time format) is handed to the pydantic adapter, which stays the one authority
on the shape: it accepts what it accepts and names every bad field otherwise. The fast path
accepts only bodies the adapter accepts too, into the same values.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any

import orjson
from pydantic import ConfigDict, Field, TypeAdapter, ValidationError, with_config
from typing_extensions import TypedDict

from service.api.problems import Problem
from service.domain import metrics as m

_ID = r"^[A-Za-z0-9._:-]{1,64}$"


@with_config(ConfigDict(extra="forbid", title="MetricsIn"))
class MetricsIn(TypedDict):
    """POST /v1/metrics."""

    source: Annotated[str, Field(pattern=_ID, examples=["chat-widget"])]
    samples: Annotated[list[m.Sample], Field(max_length=m.MAX_BATCH)]


#: The authority on a batch's shape: parses bytes straight into dicts (no object per sample).
BATCH: TypeAdapter[MetricsIn] = TypeAdapter(MetricsIn)

_SOURCE = re.compile(_ID)
_AGENT = re.compile(_ID)
_TEXT = re.compile(r"[^\x00-\x1f\x7f]+")
# The common ISO 8601 form with an offset; another form goes to the adapter.
_TIME = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_KEYS = frozenset(("id", "agent_id", "metric", "value", "occurred_at"))
_BODY_KEYS = frozenset(("source", "samples"))


def _field(loc: tuple[int | str, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text or "body"


def shaped(sample: Any) -> bool:
    """Tell whether a decoded sample has the exact shape; convert its value and time if so."""
    if type(sample) is not dict or sample.keys() != _KEYS:
        return False
    sample_id, agent_id, metric = sample["id"], sample["agent_id"], sample["metric"]
    value, at = sample["value"], sample["occurred_at"]
    if (type(sample_id) is not str or len(sample_id) > 128 or not _TEXT.fullmatch(sample_id)
            or type(agent_id) is not str or not _AGENT.fullmatch(agent_id)
            or type(metric) is not str or len(metric) > 64 or not _TEXT.fullmatch(metric)
            or type(at) is not str or not _TIME.fullmatch(at)):
        return False
    if type(value) is int:
        if abs(value) > 2**53:  # beyond exact floats: the adapter decides
            return False
        sample["value"] = float(value)
    elif type(value) is not float:
        return False
    try:
        sample["occurred_at"] = datetime.fromisoformat(at)
    except ValueError:
        return False
    return True


def _fast(body: bytes) -> MetricsIn | None:
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None
    if type(doc) is not dict or doc.keys() != _BODY_KEYS:
        return None
    source, samples = doc["source"], doc["samples"]
    if (type(source) is not str or not _SOURCE.fullmatch(source) or type(samples) is not list
            or len(samples) > m.MAX_BATCH):
        return None
    for sample in samples:
        if not shaped(sample):
            return None
    return MetricsIn(source=source, samples=samples)


def validation_problem(exc: ValidationError, prefix: tuple[int | str, ...] = ()) -> Problem:
    """Return the 413 or 422 problem for a batch the adapter refused."""
    errors = [{"field": _field((*prefix, *e["loc"])), "reason": e["msg"], "location": "body"}
              for e in exc.errors(include_url=False)]
    if any(e["type"] == "too_long" and e["loc"] == ("samples",) for e in exc.errors()):
        return Problem(413, f"a batch holds at most {m.MAX_BATCH} samples; split it",
                       kind="batch-too-large",
                       errors=[{"field": "samples", "reason": f"at most {m.MAX_BATCH} samples"}])
    fields = ", ".join(sorted({e["field"] for e in errors})[:10])
    return Problem(422, f"invalid request: {fields}", kind="validation-error",
                   errors=errors[:100])


def parse_json(body: bytes) -> MetricsIn:
    """Parse an application/json batch; raise a 413 or 422 problem naming each bad field."""
    batch = _fast(body)
    if batch is not None:
        return batch
    try:
        return BATCH.validate_json(body)
    except ValidationError as exc:
        raise validation_problem(exc) from None
