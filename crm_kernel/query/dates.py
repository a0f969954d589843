"""Relative date windows, computed once in Python so both engines see the same bounds.

Every window is half-open, ``start <= value < end``, in the time zone of the query
(``CRM_TIMEZONE``, default UTC). For a date field the window is in whole days:

| operator | date field | timestamp field |
|---|---|---|
| ``inLast N unit`` | ``[today - N unit, today + 1 day)``: the last N units up to and including today | ``[now - N unit, now)`` |
| ``inNext N unit`` | ``[today, today + N unit + 1 day)``: today and the next N units | ``[now, now + N unit)`` |
| ``olderThan N unit`` | ``value < today - N unit`` | ``value < now - N unit`` |
| ``today`` ``yesterday`` ``tomorrow`` | that day | that day from midnight to midnight |
| ``this/last/nextWeek`` | Monday to Monday (ISO weeks) | the same days, midnight to midnight |
| ``this/last/nextMonth``, ``...Quarter``, ``...Year`` | first day of the period to the first day of the next | the same, midnight to midnight |

Months are calendar months: one month before 31 March is 28 (or 29) February.
"""  # noqa: E501 (a table reads best one row per line)

from __future__ import annotations

import calendar
import datetime as dt

UNITS = ("day", "week", "month", "quarter", "year")
_MONTHS = {"month": 1, "quarter": 3, "year": 12}

PERIODS = {  # operator -> (unit, shift in units from the current one)
    "today": ("day", 0),
    "yesterday": ("day", -1),
    "tomorrow": ("day", 1),
    **{
        f"{when}{unit.capitalize()}": (unit, shift)
        for unit in ("week", "month", "quarter", "year")
        for when, shift in (("this", 0), ("last", -1), ("next", 1))
    },
}


def shift(day: dt.date, amount: int, unit: str) -> dt.date:
    """``day`` moved by ``amount`` units (negative: back); months clamp to the month's end."""
    if unit == "day":
        return day + dt.timedelta(days=amount)
    if unit == "week":
        return day + dt.timedelta(weeks=amount)
    months = day.year * 12 + day.month - 1 + amount * _MONTHS[unit]
    year, month = divmod(months, 12)
    month += 1
    return dt.date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def period_start(day: dt.date, unit: str) -> dt.date:
    if unit == "day":
        return day
    if unit == "week":
        return day - dt.timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return dt.date(day.year, 3 * ((day.month - 1) // 3) + 1, 1)
    return dt.date(day.year, 1, 1)


def _midnight(day: dt.date, tz: dt.tzinfo) -> dt.datetime:
    return dt.datetime.combine(day, dt.time(), tzinfo=tz)


def _shift_instant(now: dt.datetime, amount: int, unit: str) -> dt.datetime:
    return dt.datetime.combine(shift(now.date(), amount, unit), now.timetz())


def relative_window(operator: str, amount: int, unit: str, field_type: str, now: dt.datetime):
    """``(start, end)`` for inLast / inNext / olderThan; ``now`` is aware, in the query's zone."""
    if field_type == "date":
        today = now.date()
        return {
            "inLast": (shift(today, -amount, unit), today + dt.timedelta(days=1)),
            "inNext": (today, shift(today, amount, unit) + dt.timedelta(days=1)),
            "olderThan": (None, shift(today, -amount, unit)),
        }[operator]
    return {
        "inLast": (_shift_instant(now, -amount, unit), now),
        "inNext": (now, _shift_instant(now, amount, unit)),
        "olderThan": (None, _shift_instant(now, -amount, unit)),
    }[operator]


def period_window(operator: str, field_type: str, now: dt.datetime):
    """``(start, end)`` of a calendar period such as ``lastMonth``."""
    unit, offset = PERIODS[operator]
    start = shift(period_start(now.date(), unit), offset, unit)
    end = shift(start, 1, unit)
    if field_type == "date":
        return start, end
    return _midnight(start, now.tzinfo), _midnight(end, now.tzinfo)
