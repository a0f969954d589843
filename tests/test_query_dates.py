"""Relative date windows: exact bounds at the edges, as documented in query/dates.py."""

import datetime as dt
import zoneinfo

import pytest

from crm_kernel.query.dates import period_window, relative_window, shift

UTC = dt.UTC
BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
NOW = dt.datetime(2026, 3, 31, 15, 30, tzinfo=UTC)  # a Tuesday, the last day of a quarter


@pytest.mark.parametrize(
    ("day", "amount", "unit", "expected"),
    [
        ("2026-03-31", -1, "month", "2026-02-28"),
        ("2024-03-31", -1, "month", "2024-02-29"),
        ("2026-01-31", 1, "month", "2026-02-28"),
        ("2026-11-30", 1, "quarter", "2027-02-28"),
        ("2024-02-29", 1, "year", "2025-02-28"),
        ("2026-01-01", -1, "day", "2025-12-31"),
        ("2026-01-01", -2, "week", "2025-12-18"),
        ("2026-05-15", 0, "year", "2026-05-15"),
    ],
)
def test_shift_clamps_to_month_end(day, amount, unit, expected):
    assert shift(dt.date.fromisoformat(day), amount, unit) == dt.date.fromisoformat(expected)


D = dt.date.fromisoformat


@pytest.mark.parametrize(
    ("operator", "amount", "unit", "expected"),
    [
        ("inLast", 30, "day", (D("2026-03-01"), D("2026-04-01"))),
        ("inLast", 0, "day", (D("2026-03-31"), D("2026-04-01"))),
        ("inLast", 1, "month", (D("2026-02-28"), D("2026-04-01"))),
        ("inNext", 7, "day", (D("2026-03-31"), D("2026-04-08"))),
        ("inNext", 1, "quarter", (D("2026-03-31"), D("2026-07-01"))),
        ("olderThan", 1, "year", (None, D("2025-03-31"))),
    ],
)
def test_relative_windows_on_dates(operator, amount, unit, expected):
    assert relative_window(operator, amount, unit, "date", NOW) == expected


def test_relative_windows_on_timestamps_end_or_start_at_now():
    assert relative_window("inLast", 2, "day", "timestamp", NOW) == (NOW - dt.timedelta(days=2), NOW)
    assert relative_window("inNext", 1, "week", "timestamp", NOW) == (NOW, NOW + dt.timedelta(weeks=1))
    start = relative_window("inLast", 1, "month", "timestamp", NOW)[0]
    assert start == dt.datetime(2026, 2, 28, 15, 30, tzinfo=UTC)
    assert relative_window("olderThan", 3, "day", "timestamp", NOW) == (None, NOW - dt.timedelta(days=3))


@pytest.mark.parametrize(
    ("operator", "expected"),
    [
        ("today", ("2026-03-31", "2026-04-01")),
        ("yesterday", ("2026-03-30", "2026-03-31")),
        ("tomorrow", ("2026-04-01", "2026-04-02")),
        ("thisWeek", ("2026-03-30", "2026-04-06")),
        ("lastWeek", ("2026-03-23", "2026-03-30")),
        ("nextWeek", ("2026-04-06", "2026-04-13")),
        ("thisMonth", ("2026-03-01", "2026-04-01")),
        ("lastMonth", ("2026-02-01", "2026-03-01")),
        ("nextMonth", ("2026-04-01", "2026-05-01")),
        ("thisQuarter", ("2026-01-01", "2026-04-01")),
        ("lastQuarter", ("2025-10-01", "2026-01-01")),
        ("nextQuarter", ("2026-04-01", "2026-07-01")),
        ("thisYear", ("2026-01-01", "2027-01-01")),
        ("lastYear", ("2025-01-01", "2026-01-01")),
        ("nextYear", ("2027-01-01", "2028-01-01")),
    ],
)
def test_calendar_periods(operator, expected):
    start, end = map(D, expected)
    assert period_window(operator, "date", NOW) == (start, end)
    assert period_window(operator, "timestamp", NOW) == (
        dt.datetime.combine(start, dt.time(), UTC),
        dt.datetime.combine(end, dt.time(), UTC),
    )


def test_periods_follow_the_query_time_zone():
    """At 23:30 UTC on 31 March it is already 1 April in Berlin: 'today' is Berlin's day."""
    late = dt.datetime(2026, 3, 31, 23, 30, tzinfo=UTC).astimezone(BERLIN)
    start, end = period_window("today", "timestamp", late)
    assert start == dt.datetime(2026, 4, 1, tzinfo=BERLIN)
    assert end == dt.datetime(2026, 4, 2, tzinfo=BERLIN)
    assert start.astimezone(UTC) == dt.datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # CEST is UTC+2
    assert period_window("thisMonth", "date", late) == (D("2026-04-01"), D("2026-05-01"))


def test_month_across_a_dst_change_is_midnight_to_midnight_local():
    start, end = period_window("thisMonth", "timestamp", dt.datetime(2026, 3, 15, 12, tzinfo=BERLIN))
    assert (start.utcoffset(), end.utcoffset()) == (dt.timedelta(hours=1), dt.timedelta(hours=2))
