"""validate_scheme reports problems for any numbers a client can send; it never raises.

Found by the API fuzz run: role weights near the float limit made math.fsum overflow, and a
PUT /v1/schemes/{id} answered 500 instead of 422.
"""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from service.domain.scheme import DEFAULT_SCHEME, Criterion, RaterRole, validate_scheme

_any_float = st.floats(allow_nan=True, allow_infinity=True)


@given(weights=st.lists(_any_float, min_size=1, max_size=4),
       criteria=st.lists(_any_float, min_size=1, max_size=4),
       kpis=st.lists(_any_float, min_size=1, max_size=4))
def test_any_weights_are_judged_without_raising(
    weights: list[float], criteria: list[float], kpis: list[float]
) -> None:
    roles = tuple(
        RaterRole(role=role, weight=w, criteria=tuple(
            Criterion(name=f"c{i}", weight=c) for i, c in enumerate(criteria)))
        for role, w in zip(("self", "manager", "peer", "expert"), weights, strict=False)
    )
    scheme = DEFAULT_SCHEME.model_copy(update={
        "roles": roles,
        "kpis": tuple(k.model_copy(update={"weight": w})
                      for k, w in zip(DEFAULT_SCHEME.kpis, kpis, strict=False)),
    })
    problems = validate_scheme(scheme)
    sane = all(0 <= w < 1e300 for w in weights + criteria + kpis)
    assert problems or sane
