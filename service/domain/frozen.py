"""The base of the domain's pydantic models: events, schemes, ledgers, interview records."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Frozen(BaseModel):
    """An immutable model whose unknown fields are an error.

    ``extra="forbid"``: a misspelt field in a body or a stored event is refused, not silently
    dropped; ``frozen``: a shared value (a scheme, a decoded event held by several projections)
    cannot be changed in place.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")
