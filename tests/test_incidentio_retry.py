"""Retry timing: Retry-After in both forms, and exponential backoff with full jitter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from incidentio_operator.incidentio.retry import backoff_delay, parse_retry_after

NOW = datetime(2026, 11, 26, 10, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [("1", 1.0), ("0", 0.0), (" 30 ", 30.0), ("2.5", 2.5), ("120", 120.0)],
)
def test_retry_after_in_seconds(header: str, seconds: float) -> None:
    assert parse_retry_after(header, NOW) == seconds


def test_retry_after_as_an_http_date_is_the_time_until_then() -> None:
    header = format_datetime(NOW + timedelta(seconds=7), usegmt=True)

    assert header.endswith("GMT")
    assert parse_retry_after(header, NOW) == 7.0


def test_retry_after_as_an_http_date_with_a_numeric_zone() -> None:
    assert parse_retry_after("Thu, 26 Nov 2026 11:00:05 +0100", NOW) == 5.0


def test_retry_after_as_an_http_date_in_the_past_means_now() -> None:
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", NOW) == 0.0


@pytest.mark.parametrize("header", [None, "", "  ", "soon", "-1", "nan", "inf", "Thu, 99 Nov 2026 25:00:00 GMT"])
def test_unusable_retry_after_is_none(header: str | None) -> None:
    assert parse_retry_after(header, NOW) is None


def test_backoff_doubles_from_the_base_up_to_the_cap() -> None:
    def upper_bound(low: float, high: float) -> float:
        assert low == 0.0
        return high

    ceilings = [backoff_delay(retry, base=0.5, cap=3.0, uniform=upper_bound) for retry in range(5)]

    assert ceilings == [0.5, 1.0, 2.0, 3.0, 3.0]


def test_backoff_is_full_jitter_between_zero_and_the_ceiling() -> None:
    rng = random.Random(7)
    delays = [backoff_delay(3, base=0.5, cap=30.0, uniform=rng.uniform) for _ in range(2000)]

    assert all(0.0 <= delay <= 4.0 for delay in delays)
    # Full jitter spreads retries over the whole range instead of bunching them at the ceiling.
    assert min(delays) < 0.4 and max(delays) > 3.6
    assert 1.8 < sum(delays) / len(delays) < 2.2


def test_backoff_survives_huge_attempt_counts() -> None:
    assert backoff_delay(10_000, base=0.5, cap=30.0, uniform=lambda low, high: high) == 30.0
