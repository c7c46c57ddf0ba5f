"""The range of periods the service takes (issue 17)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain.errors import DomainError
from service.domain.periods import check_period

NOW = datetime(2026, 11, 27, tzinfo=UTC)


@pytest.mark.parametrize("period", ["2000-01", "2026-11", "2036-12"])
def test_periods_from_2000_to_ten_years_ahead_are_taken(period: str) -> None:
    assert check_period(period, NOW) == period


@pytest.mark.parametrize("period", ["0000-01", "0001-01", "1999-12", "2037-01", "9999-12",
                                    "2026-13", "2026-1", "x"])
def test_other_periods_are_refused_naming_the_field(period: str) -> None:
    with pytest.raises(DomainError) as refused:
        check_period(period, NOW, field="month")
    assert [e.field for e in refused.value.errors] == ["month"]
