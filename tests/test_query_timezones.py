"""Relative dates and date truncation in a zone east of UTC (Tokyo) and one west (Los Angeles).

Every expected answer below is written by hand from the table of instants, never computed by
the engine or by Python date code. Each question is asked four ways, all of which must give
that answer:

- as a user does: ``CRM_TIMEZONE`` set, ``CRM.connect()``, ``crm.query(...)`` on PostgreSQL and
  on DuckDB over a snapshot folder;
- through the library: ``run_postgres(timezone=...)`` / ``run_duckdb(timezone=...)`` over a
  PostgreSQL session and a DuckDB connection that are both in UTC (the zone is the query's,
  not the session's).

An activity's subject is its ``completed_at`` in UTC; a deal's title is its close date.

| completed_at (UTC) | Tokyo (UTC+9)        | Los Angeles                | notes                          |
|--------------------|----------------------|----------------------------|--------------------------------|
| 2025-12-31 20:00Z  | 2026-01-01 05:00 Thu | 2025-12-31 12:00 PST       | a new year only in Tokyo       |
| 2026-02-28 16:00Z  | 03-01 01:00 Sun      | 02-28 08:00 PST Sat        | a new month only in Tokyo      |
| 2026-03-01 05:00Z  | 03-01 14:00 Sun      | 02-28 21:00 PST Sat        | still February in LA           |
| 2026-03-08 06:30Z  | 03-08 15:30 Sun      | 03-07 22:30 PST Sat        |                                |
| 2026-03-08 07:30Z  | 03-08 16:30 Sun      | 03-07 23:30 PST Sat        |                                |
| 2026-03-08 08:30Z  | 03-08 17:30 Sun      | 03-08 00:30 PST Sun        | LA: the day DST begins         |
| 2026-03-08 09:30Z  | 03-08 18:30 Sun      | 03-08 01:30 PST Sun        |                                |
| 2026-03-08 10:30Z  | 03-08 19:30 Sun      | 03-08 03:30 PDT Sun        | after the 02:00 -> 03:00 jump  |
| 2026-03-08 15:30Z  | 03-09 00:30 Mon      | 03-08 08:30 PDT Sun        | a new ISO week only in Tokyo   |
| 2026-03-09 06:30Z  | 03-09 15:30 Mon      | 03-08 23:30 PDT Sun        | LA's 23-hour Sunday            |
| 2026-03-09 07:30Z  | 03-09 16:30 Mon      | 03-09 00:30 PDT Mon        |                                |
| 2026-03-30 16:00Z  | 03-31 01:00 Tue      | 03-30 09:00 PDT Mon        |                                |
| 2026-03-31 14:30Z  | 03-31 23:30 Tue      | 03-31 07:30 PDT Tue        |                                |
| 2026-03-31 15:30Z  | 04-01 00:30 Wed      | 03-31 08:30 PDT Tue        | a new quarter only in Tokyo    |
| 2026-04-01 02:00Z  | 04-01 11:00 Wed      | 03-31 19:00 PDT Tue        |                                |
| 2026-04-01 06:30Z  | 04-01 15:30 Wed      | 03-31 23:30 PDT Tue        |                                |
| 2026-04-01 07:30Z  | 04-01 16:30 Wed      | 04-01 00:30 PDT Wed        | LA's new quarter               |

EAST_NOW is 2026-03-31 20:00 UTC (Tue): already Wed 1 April 05:00 in Tokyo, a new quarter;
Tue 31 March 13:00 PDT in Los Angeles. WEST_NOW is 2026-03-09 06:00 UTC (Mon): still Sun
8 March 23:00 PDT in Los Angeles, the day its clocks went forward (a 23-hour day); Mon 15:00
in Tokyo. A timestamp's ``inLast 1 day`` is calendar arithmetic in the zone: one day before
Sunday 23:00 PDT is Saturday 23:00 PST, 23 hours earlier.
"""

import datetime as dt
import zoneinfo

import pytest

from crm_kernel import CRM, snapshot
from crm_kernel.db import connect_engine
from crm_kernel.query import run_duckdb, run_postgres

from . import query_data

UTC, TOKYO, LA = "UTC", "Asia/Tokyo", "America/Los_Angeles"
EAST_NOW = dt.datetime(2026, 3, 31, 20, 0, tzinfo=dt.UTC)
WEST_NOW = dt.datetime(2026, 3, 9, 6, 0, tzinfo=dt.UTC)
D = dt.date.fromisoformat

COMPLETED = [
    "2025-12-31 20:00Z",
    "2026-02-28 16:00Z",
    "2026-03-01 05:00Z",
    "2026-03-08 06:30Z",
    "2026-03-08 07:30Z",
    "2026-03-08 08:30Z",
    "2026-03-08 09:30Z",
    "2026-03-08 10:30Z",
    "2026-03-08 15:30Z",
    "2026-03-09 06:30Z",
    "2026-03-09 07:30Z",
    "2026-03-30 16:00Z",
    "2026-03-31 14:30Z",
    "2026-03-31 15:30Z",
    "2026-04-01 02:00Z",
    "2026-04-01 06:30Z",
    "2026-04-01 07:30Z",
]
CLOSING = [
    "2026-02-28",
    "2026-03-01",
    "2026-03-07",
    "2026-03-08",
    "2026-03-09",
    "2026-03-30",
    "2026-03-31",
    "2026-04-01",
    "2026-04-02",
]

COMPANY = query_data.uid("company", 1)
DATA = [
    ("companies", [{"id": COMPANY, "name": "Clockwork Ltd"}]),
    (
        "deals",
        [
            {
                "id": query_data.uid("deal", n),
                "company_id": COMPANY,
                "stage_id": query_data.STAGE["Lead"],
                "title": f"close {day[5:]}",
                "expected_close_date": day,
            }
            for n, day in enumerate(CLOSING, start=1)
        ],
    ),
    (
        "activities",
        [
            {
                "id": query_data.uid("activity", n),
                "type": "call",
                "status": "completed",
                "subject": at[5:],
                "completed_at": at.replace(" ", "T").replace("Z", ":00Z"),
            }
            for n, at in enumerate(COMPLETED, start=1)
        ],
    ),
]


def done(operator, value=None, *more):
    """Subjects of the activities whose completed_at matches."""
    return {
        "entity": "activities",
        "select": ["subject"],
        "where": {"rules": [{"field": "completed_at", "operator": operator, "value": value}, *more]},
    }


def closing(operator, value=None):
    """Titles of the deals whose expected_close_date matches."""
    return {
        "entity": "deals",
        "select": ["title"],
        "where": {"rules": [{"field": "expected_close_date", "operator": operator, "value": value}]},
    }


def per(trunc, *rules, field="completed_at", entity="activities"):
    """Rows counted per truncated date."""
    spec = {
        "entity": entity,
        "group_by": [{"field": field, "trunc": trunc, "as": "day"}],
        "aggregates": [{"fn": "count", "as": "n"}],
    }
    return spec | ({"where": {"rules": list(rules)}} if rules else {})


SINCE_MARCH_30 = {"field": "completed_at", "operator": ">=", "value": "2026-03-30T12:00:00Z"}
DST_WEEKEND = [
    {"field": "completed_at", "operator": ">=", "value": "2026-03-08T00:00:00Z"},
    {"field": "completed_at", "operator": "<", "value": "2026-03-10T00:00:00Z"},
]
Q1_UTC = [
    "02-28 16:00Z",
    "03-01 05:00Z",
    "03-08 06:30Z",
    "03-08 07:30Z",
    "03-08 08:30Z",
    "03-08 09:30Z",
    "03-08 10:30Z",
    "03-08 15:30Z",
    "03-09 06:30Z",
    "03-09 07:30Z",
    "03-30 16:00Z",
    "03-31 14:30Z",
    "03-31 15:30Z",
]
Q1_TOKYO = [
    "12-31 20:00Z",
    "02-28 16:00Z",
    "03-01 05:00Z",
    "03-08 06:30Z",
    "03-08 07:30Z",
    "03-08 08:30Z",
    "03-08 09:30Z",
    "03-08 10:30Z",
    "03-08 15:30Z",
    "03-09 06:30Z",
    "03-09 07:30Z",
    "03-30 16:00Z",
    "03-31 14:30Z",
]
MARCH_8_UTC = ["03-08 06:30Z", "03-08 07:30Z", "03-08 08:30Z", "03-08 09:30Z", "03-08 10:30Z", "03-08 15:30Z"]

# (id, now, spec, {zone: expected}): a list is the rows' first column (any order); a set is whole rows.
CASES = [
    # -- timestamps, east: a new day, month, quarter in Tokyo ---------------------------------
    (
        "today",
        EAST_NOW,
        done("today"),
        {
            TOKYO: ["03-31 15:30Z", "04-01 02:00Z", "04-01 06:30Z", "04-01 07:30Z"],
            UTC: ["03-31 14:30Z", "03-31 15:30Z"],
            LA: ["03-31 14:30Z", "03-31 15:30Z", "04-01 02:00Z", "04-01 06:30Z"],
        },
    ),
    (
        "yesterday",
        EAST_NOW,
        done("yesterday"),
        {TOKYO: ["03-30 16:00Z", "03-31 14:30Z"], UTC: ["03-30 16:00Z"], LA: ["03-30 16:00Z"]},
    ),
    (
        "thisQuarter",
        EAST_NOW,
        done("thisQuarter"),
        {TOKYO: ["03-31 15:30Z", "04-01 02:00Z", "04-01 06:30Z", "04-01 07:30Z"], UTC: Q1_UTC},
    ),
    ("lastQuarter", EAST_NOW, done("lastQuarter"), {TOKYO: Q1_TOKYO, UTC: ["12-31 20:00Z"]}),
    ("lastMonth", EAST_NOW, done("lastMonth"), {TOKYO: Q1_TOKYO[1:], UTC: ["02-28 16:00Z"]}),
    ("lastYear", EAST_NOW, done("lastYear"), {TOKYO: [], UTC: ["12-31 20:00Z"], LA: ["12-31 20:00Z"]}),
    (
        ">= a date is from midnight in the zone",
        EAST_NOW,
        done(">=", "2026-04-01"),
        {
            TOKYO: ["03-31 15:30Z", "04-01 02:00Z", "04-01 06:30Z", "04-01 07:30Z"],
            UTC: ["04-01 02:00Z", "04-01 06:30Z", "04-01 07:30Z"],
            LA: ["04-01 07:30Z"],
        },
    ),
    # -- timestamps, west: the day daylight saving time began in Los Angeles -------------------
    (
        "today on a 23-hour day",
        WEST_NOW,
        done("today"),
        {
            LA: ["03-08 08:30Z", "03-08 09:30Z", "03-08 10:30Z", "03-08 15:30Z", "03-09 06:30Z"],
            UTC: ["03-09 06:30Z", "03-09 07:30Z"],
            TOKYO: ["03-08 15:30Z", "03-09 06:30Z", "03-09 07:30Z"],
        },
    ),
    (
        "yesterday before the jump",
        WEST_NOW,
        done("yesterday"),
        {
            LA: ["03-08 06:30Z", "03-08 07:30Z"],
            UTC: MARCH_8_UTC,
            TOKYO: ["03-08 06:30Z", "03-08 07:30Z", "03-08 08:30Z", "03-08 09:30Z", "03-08 10:30Z"],
        },
    ),
    ("tomorrow", WEST_NOW, done("tomorrow"), {LA: ["03-09 07:30Z"], UTC: []}),
    (
        "thisWeek ends on Monday midnight PDT",
        WEST_NOW,
        done("thisWeek"),
        {LA: MARCH_8_UTC + ["03-09 06:30Z"], UTC: ["03-09 06:30Z", "03-09 07:30Z"]},
    ),
    ("lastWeek", WEST_NOW, done("lastWeek"), {LA: ["02-28 16:00Z", "03-01 05:00Z"], UTC: MARCH_8_UTC}),
    (
        "lastMonth",
        WEST_NOW,
        done("lastMonth"),
        {LA: ["02-28 16:00Z", "03-01 05:00Z"], UTC: ["02-28 16:00Z"], TOKYO: []},
    ),
    (
        "inLast 1 day across the jump is 23 hours",
        WEST_NOW,
        done("inLast", {"amount": 1, "unit": "day"}),
        {LA: MARCH_8_UTC[1:], UTC: MARCH_8_UTC},
    ),
    (
        "olderThan 1 day",
        WEST_NOW,
        done("olderThan", {"amount": 1, "unit": "day"}),
        {
            LA: ["12-31 20:00Z", "02-28 16:00Z", "03-01 05:00Z", "03-08 06:30Z"],
            UTC: ["12-31 20:00Z", "02-28 16:00Z", "03-01 05:00Z"],
        },
    ),
    # -- dates: "today" is the zone's date --------------------------------------------------
    ("date today", EAST_NOW, closing("today"), {TOKYO: ["close 04-01"], UTC: ["close 03-31"], LA: ["close 03-31"]}),
    (
        "date inLast 1 day",
        EAST_NOW,
        closing("inLast", {"amount": 1, "unit": "day"}),
        {TOKYO: ["close 03-31", "close 04-01"], UTC: ["close 03-30", "close 03-31"]},
    ),
    (
        "date inNext 1 day",
        EAST_NOW,
        closing("inNext", {"amount": 1, "unit": "day"}),
        {TOKYO: ["close 04-01", "close 04-02"], UTC: ["close 03-31", "close 04-01"]},
    ),
    (
        "date olderThan 1 month",
        EAST_NOW,
        closing("olderThan", {"amount": 1, "unit": "month"}),
        {TOKYO: ["close 02-28"], UTC: []},
    ),
    (
        "date thisQuarter",
        EAST_NOW,
        closing("thisQuarter"),
        {
            TOKYO: ["close 04-01", "close 04-02"],
            UTC: [
                "close 02-28",
                "close 03-01",
                "close 03-07",
                "close 03-08",
                "close 03-09",
                "close 03-30",
                "close 03-31",
            ],
        },
    ),
    (
        "date today west",
        WEST_NOW,
        closing("today"),
        {LA: ["close 03-08"], UTC: ["close 03-09"], TOKYO: ["close 03-09"]},
    ),
    ("date yesterday west", WEST_NOW, closing("yesterday"), {LA: ["close 03-07"], UTC: ["close 03-08"]}),
    ("date thisWeek west", WEST_NOW, closing("thisWeek"), {LA: ["close 03-07", "close 03-08"], UTC: ["close 03-09"]}),
    (
        "date inLast 1 week west",
        WEST_NOW,
        closing("inLast", {"amount": 1, "unit": "week"}),
        {LA: ["close 03-01", "close 03-07", "close 03-08"], UTC: ["close 03-07", "close 03-08", "close 03-09"]},
    ),
    # -- truncation: a timestamp falls in the zone's day, week, month, quarter, year ----------
    (
        "trunc day",
        EAST_NOW,
        per("day", SINCE_MARCH_30),
        {
            TOKYO: {(D("2026-03-31"), 2), (D("2026-04-01"), 4)},
            UTC: {(D("2026-03-30"), 1), (D("2026-03-31"), 2), (D("2026-04-01"), 3)},
            LA: {(D("2026-03-30"), 1), (D("2026-03-31"), 4), (D("2026-04-01"), 1)},
        },
    ),
    (
        "trunc month",
        EAST_NOW,
        per("month", SINCE_MARCH_30),
        {
            TOKYO: {(D("2026-03-01"), 2), (D("2026-04-01"), 4)},
            UTC: {(D("2026-03-01"), 3), (D("2026-04-01"), 3)},
            LA: {(D("2026-03-01"), 5), (D("2026-04-01"), 1)},
        },
    ),
    (
        "trunc quarter",
        EAST_NOW,
        per("quarter"),
        {
            TOKYO: {(D("2026-01-01"), 13), (D("2026-04-01"), 4)},
            UTC: {(D("2025-10-01"), 1), (D("2026-01-01"), 13), (D("2026-04-01"), 3)},
            LA: {(D("2025-10-01"), 1), (D("2026-01-01"), 15), (D("2026-04-01"), 1)},
        },
    ),
    (
        "trunc year",
        EAST_NOW,
        per("year"),
        {
            TOKYO: {(D("2026-01-01"), 17)},
            UTC: {(D("2025-01-01"), 1), (D("2026-01-01"), 16)},
            LA: {(D("2025-01-01"), 1), (D("2026-01-01"), 16)},
        },
    ),
    (
        "trunc week",
        WEST_NOW,
        per("week", *DST_WEEKEND),
        {
            TOKYO: {(D("2026-03-02"), 5), (D("2026-03-09"), 3)},
            UTC: {(D("2026-03-02"), 6), (D("2026-03-09"), 2)},
            LA: {(D("2026-03-02"), 7), (D("2026-03-09"), 1)},
        },
    ),
    (
        "trunc day on the DST weekend",
        WEST_NOW,
        per("day", *DST_WEEKEND),
        {
            TOKYO: {(D("2026-03-08"), 5), (D("2026-03-09"), 3)},
            UTC: {(D("2026-03-08"), 6), (D("2026-03-09"), 2)},
            LA: {(D("2026-03-07"), 2), (D("2026-03-08"), 5), (D("2026-03-09"), 1)},
        },
    ),
    (
        "a date field's truncation ignores the zone",
        EAST_NOW,
        per("month", field="expected_close_date", entity="deals"),
        {zone: {(D("2026-02-01"), 1), (D("2026-03-01"), 6), (D("2026-04-01"), 2)} for zone in (UTC, TOKYO, LA)},
    ),
]


@pytest.fixture(scope="module")
def clock_url(make_database_module) -> str:
    url = make_database_module("crm_query_tz")
    engine = connect_engine(url)
    query_data.load(engine, DATA)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def clock_snapshot(clock_url, tmp_path_factory):
    """The data set as a snapshot folder."""
    engine = connect_engine(clock_url)
    try:
        return snapshot.export(engine, tmp_path_factory.mktemp("tz-snapshots"))
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def utc_sessions(clock_url, clock_snapshot):
    """A PostgreSQL engine and a DuckDB snapshot whose sessions are in UTC."""
    engine = connect_engine(clock_url)
    opened = snapshot.Snapshot(clock_snapshot, timezone="UTC")
    yield engine, opened
    opened.close()
    engine.dispose()


@pytest.fixture(scope="module")
def users(clock_url, clock_snapshot):
    """``users(zone)``: a client and an opened snapshot as a user with ``CRM_TIMEZONE=zone`` has them."""
    opened = {}

    def user(zone):
        if zone not in opened:
            with pytest.MonkeyPatch.context() as env:
                env.setenv("CRM_DATABASE_URL", clock_url)
                env.setenv("CRM_TIMEZONE", zone)
                opened[zone] = CRM.connect(), snapshot.open(clock_snapshot)
        return opened[zone]

    yield user
    for crm, snap in opened.values():
        snap.close()
        crm.close()


@pytest.fixture
def ask(users, utc_sessions):
    """``ask(spec, zone, now)``: the frames the four ways of asking give, by name."""
    engine, utc_snapshot = utc_sessions

    def ask(spec, zone, now):
        crm, snap = users(zone)
        return {
            "CRM_TIMEZONE, PostgreSQL": crm.query(spec, now=now),
            "CRM_TIMEZONE, DuckDB snapshot": crm.query(spec, backend="duckdb", snapshot=snap, now=now),
            "run_postgres(timezone=)": run_postgres(engine, spec, timezone=zone, now=now).frame,
            "run_duckdb(timezone=)": run_duckdb(utc_snapshot.con, spec, timezone=zone, now=now).frame,
        }

    return ask


def answer(frame, expected):
    if isinstance(expected, set):
        return set(frame.rows())
    return sorted(frame.to_series(0).to_list())


@pytest.mark.parametrize(
    ("now", "spec", "zone", "expected"),
    [
        pytest.param(now, spec, zone, expected, id=f"{name}-{zone}")
        for name, now, spec, by_zone in CASES
        for zone, expected in by_zone.items()
    ],
)
def test_answers_follow_the_zone(ask, now, spec, zone, expected):
    want = expected if isinstance(expected, set) else sorted(expected)
    for way, frame in ask(spec, zone, now).items():
        assert answer(frame, expected) == want, way


def test_the_zone_changes_the_answer():
    """Each question's answers differ between at least two zones, so the cases can tell zones apart
    (except the one that proves a date field's truncation does not move)."""
    for name, _, _, by_zone in CASES:
        answers = [sorted(v) for v in by_zone.values()]
        assert len(by_zone) >= 2, name
        assert any(a != answers[0] for a in answers) or name.startswith("a date field"), name


@pytest.mark.parametrize(
    ("zone", "subject", "wall", "offset"),
    [
        (TOKYO, "03-31 15:30Z", dt.datetime(2026, 4, 1, 0, 30), dt.timedelta(hours=9)),
        (LA, "03-08 09:30Z", dt.datetime(2026, 3, 8, 1, 30), dt.timedelta(hours=-8)),
        (LA, "03-08 10:30Z", dt.datetime(2026, 3, 8, 3, 30), dt.timedelta(hours=-7)),
        (UTC, "03-08 10:30Z", dt.datetime(2026, 3, 8, 10, 30), dt.timedelta(0)),
    ],
)
def test_timestamps_come_back_in_the_zone(ask, zone, subject, wall, offset):
    import polars as pl

    spec = {
        "entity": "activities",
        "select": ["completed_at"],
        "where": {"rules": [{"field": "subject", "operator": "=", "value": subject}]},
    }
    for way, frame in ask(spec, zone, EAST_NOW).items():
        assert frame.schema == {"completed_at": pl.Datetime("us", zone)}, way
        (value,) = frame["completed_at"].to_list()
        assert (value.replace(tzinfo=None), value.utcoffset()) == (wall, offset), way
        assert value.tzinfo == zoneinfo.ZoneInfo(zone), way


def test_a_snapshot_folder_opened_by_the_client_follows_crm_timezone(clock_url, clock_snapshot, monkeypatch):
    monkeypatch.setenv("CRM_DATABASE_URL", clock_url)
    monkeypatch.setenv("CRM_TIMEZONE", TOKYO)
    with CRM.connect() as crm:
        frame = crm.query(per("day", SINCE_MARCH_30), backend="duckdb", snapshot=clock_snapshot, now=EAST_NOW)
        assert set(frame.rows()) == {(D("2026-03-31"), 2), (D("2026-04-01"), 4)}
        frame = crm.query(done("today"), backend="duckdb", snapshot=clock_snapshot, now=EAST_NOW)
        assert sorted(frame["subject"]) == ["03-31 15:30Z", "04-01 02:00Z", "04-01 06:30Z", "04-01 07:30Z"]
