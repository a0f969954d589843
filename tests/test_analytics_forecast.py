"""The backtest on a synthetic history whose right answer is known, on both engines.

Every quarter from Q4 2025 to Q3 2026, four 1,000 USD deals enter Negotiation (configured
probability 75%) ten days before the quarter starts, expected to close mid-quarter; a month
into the quarter one is won and three are lost. So the stage method always forecasts 3,000
against 1,000 won (200% off), while the learned probability is 1 in 4 as soon as one past
quarter is known (1,000: exact). Q2 also holds a NOK deal, which has no rate: left out.
"""

from __future__ import annotations

import datetime as dt

import pytest

from crm_kernel.errors import QuerySpecError
from tests.test_analytics import Book, at, history_database, on_engine, rows

NOW = at("2026-07-15 10:00")
QUARTERS = [dt.date(2025, 10, 1), dt.date(2026, 1, 1), dt.date(2026, 4, 1), dt.date(2026, 7, 1)]


def build(conn) -> None:
    book = Book(conn)
    rep = book.user("Rep")
    acme = book.company("Acme")
    for start in QUARTERS:
        created = f"{start - dt.timedelta(days=10)} 10:00"
        close = str(start + dt.timedelta(days=44))
        decided = start + dt.timedelta(days=30)
        keys = [f"{start}-{n}" for n in range(4)]
        for key in keys:
            book.create(key, created, stage="Negotiation", value=1000, owner=rep, company=acme, close=close)
        if decided > NOW.date():
            continue  # the current quarter: still open
        book.move(keys[0], f"{decided} 10:00", "Won")
        for key in keys[1:]:
            book.move(key, f"{decided} 10:00", "Lost", close_reason="lost")
    book.create(
        "nok",
        "2026-03-22 10:00",
        stage="Negotiation",
        value=1000,
        currency="NOK",
        owner=rep,
        company=acme,
        close="2026-05-15",
    )
    book.move("nok", "2026-05-01 10:00", "Lost", close_reason="lost")
    book.finish()


@pytest.fixture(scope="module")
def history_crm(make_database_module, tmp_path_factory):
    yield from history_database(make_database_module, tmp_path_factory, "crm_backtest", build)


@pytest.fixture(params=["postgres", "duckdb"])
def analytics(request, history_crm):
    return on_engine(request.param, history_crm, NOW)


def test_backtest_knows_the_right_answer(analytics):
    frame = analytics.backtest(periods=2, min_history=4)
    assert frame.columns == ["period", "method", "deals", "forecast", "actual", "error", "ape", "mape", "left_out"]
    assert rows(frame) == [
        (dt.date(2026, 1, 1), "stage", 4, 3000.0, 1000.0, 2000.0, 200.0, 200.0, 0),
        (dt.date(2026, 1, 1), "learned", 4, 1000.0, 1000.0, 0.0, 0.0, 0.0, 0),
        (dt.date(2026, 4, 1), "stage", 4, 3000.0, 1000.0, 2000.0, 200.0, 200.0, 1),
        (dt.date(2026, 4, 1), "learned", 4, 1000.0, 1000.0, 0.0, 0.0, 0.0, 1),
    ]


def test_backtest_without_history_falls_back_to_the_stages(analytics):
    # In Q4 2025 nothing had closed yet: the learned method has only the configured 75%.
    frame = analytics.backtest(periods=3, min_history=4)
    assert rows(frame.filter(frame["method"] == "learned")) == [
        (dt.date(2025, 10, 1), "learned", 4, 3000.0, 1000.0, 2000.0, 200.0, 66.6667, 0),
        (dt.date(2026, 1, 1), "learned", 4, 1000.0, 1000.0, 0.0, 0.0, 66.6667, 0),
        (dt.date(2026, 4, 1), "learned", 4, 1000.0, 1000.0, 0.0, 0.0, 66.6667, 1),
    ]


def test_forecast_of_the_current_quarter(analytics):
    # Q3's four deals are open: 75% by stage; learned: 3 won of the 13 closed stays (the NOK
    # deal's counts too: a chance to win needs no exchange rate), 0.2308 x 1,000 each.
    assert rows(analytics.forecast()) == [(dt.date(2026, 7, 1), 4, 4000.0, 3000.0, 0, None)]
    assert rows(analytics.forecast(method="learned")) == [(dt.date(2026, 7, 1), 4, 4000.0, 923.2, 0, None)]


def test_backtest_needs_a_period(analytics):
    with pytest.raises(QuerySpecError, match="at least one period"):
        analytics.backtest(periods=0)
    with pytest.raises(QuerySpecError, match="unknown period 'week'"):
        analytics.backtest(period="week")
