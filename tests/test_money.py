"""Money: the reporting currency, exchange rates (plain and ECB files), re-basing, and deal
values converted at the close-date rate or the latest one, the same on PostgreSQL and DuckDB."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
import sqlalchemy as sa

from crm_kernel.errors import ValidationError
from crm_kernel.model import tables
from crm_kernel.model.currencies import format_money, is_currency, iso_4217
from crm_kernel.model.money import Total, converted_value

RESET = """
DELETE FROM exchange_rates;
INSERT INTO exchange_rates VALUES ('USD', DATE '1900-01-01', 1, 'reporting currency');
UPDATE crm_settings SET value = '"USD"' WHERE key = 'reporting_currency';
"""


@pytest.fixture
def money(crm, engine):
    with engine.begin() as conn:
        conn.connection.driver_connection.execute(RESET)
    return crm.money


def rates(money) -> dict[tuple[str, str], Decimal]:
    return {(r["currency"], r["rate_date"].isoformat()): r["rate"] for r in money.rates().iter_rows(named=True)}


def test_currency_list_comes_from_cldr():
    codes = iso_4217()
    assert {"USD", "EUR", "GBP", "JPY", "CHF", "NOK"} <= codes
    assert "DEM" not in codes and "XXX" not in codes  # replaced long ago; not a currency
    assert is_currency("BGN")  # replaced by the euro in 2026, still on recent deals
    assert format_money(Decimal("1234.5"), "EUR", "de_DE") == "1.234,50\xa0€"
    assert format_money(Decimal("1234.5"), "USD", "en_US") == "$1,234.50"


def test_default_reporting_currency_is_usd(money):
    assert money.reporting_currency() == "USD"
    assert money.rate("USD") == 1


def test_plain_csv_import_and_nearest_earlier_rate(money, tmp_path):
    f = tmp_path / "rates.csv"
    f.write_text("currency,date,rate\nEUR,2026-01-01,1.10\nEUR,2026-02-01,1.20\nGBP,2026-01-15,1.25\n")
    assert money.import_rates(f) == {"EUR": 2, "GBP": 1}
    assert money.rate("EUR", dt.date(2025, 12, 31)) is None
    assert money.rate("EUR", dt.date(2026, 1, 31)) == Decimal("1.1")
    assert money.rate("EUR", dt.date(2026, 2, 1)) == Decimal("1.2")
    assert money.rate("EUR") == Decimal("1.2")
    assert money.rate("NOK") is None


@pytest.mark.parametrize(
    "content, field",
    [
        ("currency,date,rate\nEUR,2026-01-01,1.1\nEUR,2026-13-01,1.2\n", "line 3: date"),
        ("currency,date,rate\nEUR,2026-01-01,-1\n", "line 2: rate"),
        ("currency,date,rate\nEUR,2026-01-01,abc\n", "line 2: rate"),
        ("currency,date,rate\nEURO,2026-01-01,1\n", "line 2: currency"),
        ("currency,day,rate\nEUR,2026-01-01,1\n", "header"),
        ("Date,USD,ZZZ,\n2026-01-02,1.1,3,\n", "line 1, column 3"),
    ],
)
def test_a_bad_rate_file_writes_nothing(money, tmp_path, content, field):
    f = tmp_path / "bad.csv"
    f.write_text(content)
    with pytest.raises(ValidationError) as err:
        money.import_rates(f)
    assert field in err.value.errors
    assert rates(money) == {("USD", "1900-01-01"): 1}


def test_ecb_layout_is_rebased_to_the_reporting_currency(money, tmp_path):
    f = tmp_path / "eurofxref-hist.csv"
    # The ECB's layout: units per euro, newest first, N/A for none, a trailing comma.
    f.write_text("Date,USD,JPY,GBP,\n2026-03-02,1.2500,160.00,N/A,\n2026-03-01,1.0000,150.00,0.8000,\n")
    assert money.import_rates(f) == {"EUR": 2, "JPY": 2, "GBP": 1}
    got = rates(money)
    assert got[("EUR", "2026-03-01")] == Decimal("1")  # 1 EUR = 1.00 USD
    assert got[("EUR", "2026-03-02")] == Decimal("1.25")
    assert got[("JPY", "2026-03-02")] == Decimal("0.0078125")  # 1.25 / 160
    assert got[("GBP", "2026-03-01")] == Decimal("1.25")  # 1.00 / 0.80
    assert ("USD", "2026-03-01") not in got  # the reporting currency keeps its rate of 1


def test_ecb_file_without_the_reporting_currency_is_refused(money, tmp_path):
    f = tmp_path / "ecb.csv"
    f.write_text("Date,JPY,GBP\n2026-03-01,150,0.8\n")
    with pytest.raises(ValidationError, match="no USD column"):
        money.import_rates(f)


def test_changing_the_reporting_currency_rebases_every_rate(money):
    money.set_rate("EUR", "2026-01-01", "1.25")  # 1 EUR = 1.25 USD
    money.set_rate("EUR", "2026-02-01", "1.60")
    money.set_rate("GBP", "2026-01-10", "1.50")  # 1 GBP = 1.50 USD
    money.set_rate("GBP", "2026-02-10", "2.00")
    assert money.set_reporting_currency("eur") == "EUR"
    assert money.reporting_currency() == "EUR"
    got = rates(money)
    assert got[("EUR", "1900-01-01")] == 1 and ("EUR", "2026-01-01") not in got
    assert got[("USD", "2026-01-01")] == Decimal("0.8")  # 1 / 1.25
    assert got[("USD", "2026-02-01")] == Decimal("0.625")  # 1 / 1.60
    assert got[("GBP", "2026-01-10")] == Decimal("1.2")  # 1.50 / 1.25
    assert got[("GBP", "2026-02-10")] == Decimal("1.25")  # 2.00 / 1.60
    assert ("USD", "1900-01-01") not in got


def test_a_reporting_currency_without_rates_is_refused(money):
    with pytest.raises(ValidationError, match="no exchange rates for NOK"):
        money.set_reporting_currency("NOK")
    with pytest.raises(ValidationError, match="ISO 4217"):
        money.set_reporting_currency("XYZ")
    assert money.reporting_currency() == "USD"


def _deal(crm, company, title, value, currency, stage="Lead", close=None):
    deal = crm.deals.create(company_id=company["id"], title=title, value=value, currency=currency)
    if stage != "Lead":
        changes = {"close_reason": "test"} if stage == "Lost" else {}
        if close:
            changes["actual_close_date"] = close
        deal = crm.deals.move(deal["id"], stage, changes=changes)
    return deal


def test_deals_convert_at_their_close_date_or_the_latest_rate(crm, money, engine, tmp_path):
    money.set_rate("EUR", "2026-01-01", "1.10")
    money.set_rate("EUR", "2026-03-01", "1.20")
    acme = crm.companies.create(name="Acme")
    deals = [
        _deal(crm, acme, "open eur", "100.00", "EUR"),  # latest: 120.00
        _deal(crm, acme, "won eur", "100.00", "EUR", "Won", dt.date(2026, 2, 15)),  # Jan rate: 110.00
        _deal(crm, acme, "lost eur", "50.00", "EUR", "Lost", dt.date(2026, 3, 1)),  # Mar rate: 60.00
        _deal(crm, acme, "won early", "10.00", "EUR", "Won", dt.date(2025, 12, 31)),  # no rate then
        _deal(crm, acme, "usd", "33.33", "USD"),  # itself
        _deal(crm, acme, "nok", "999.00", "NOK"),  # no rate at all
    ]
    expected = {
        "open eur": Decimal("120.00"),
        "won eur": Decimal("110.00"),
        "lost eur": Decimal("60.00"),
        "won early": None,
        "usd": Decimal("33.33"),
        "nok": None,
    }
    d = tables.table("deals")
    stmt = sa.select(d.c.title, converted_value(d.c.value, d.c.currency, d.c.actual_close_date).label("v"))
    with engine.connect() as conn:
        on_postgres = dict(conn.execute(stmt.where(d.c.id.in_([x["id"] for x in deals]))).all())
    assert on_postgres == expected

    from crm_kernel import snapshot

    folder = crm.snapshot(out=tmp_path / "snaps")
    with snapshot.open(folder) as snap:
        rows = snap.con.execute(
            str(stmt.compile(dialect=_duckdb_dialect(), compile_kwargs={"literal_binds": True}))
        ).fetchall()
    assert dict(rows) == expected


def _duckdb_dialect():
    from duckdb_engine import Dialect

    return Dialect()


def test_a_total_names_what_it_left_out():
    total = Total(Decimal("1200"), "USD", {"NOK": 3})
    assert str(total) == "$1,200.00 (3 deals in NOK without a rate are not included)"
    assert not total.complete
    assert (
        str(Total(Decimal("5"), "EUR", {"NOK": 1, "SEK": 2}))
        == "€5.00 (1 deal in NOK, 2 deals in SEK without a rate are not included)"
    )
    assert Total(Decimal("5"), "USD").format("de_DE") == "5,00\xa0$"


def test_value_reporting_in_the_query_engine_on_both_engines(crm, money, tmp_path):
    money.set_rate("EUR", "2026-01-01", "1.10")
    money.set_rate("EUR", "2026-03-01", "1.20")
    money.set_rate("GBP", "2026-01-01", "1.50")
    acme = crm.companies.create(name="Acme")
    _deal(crm, acme, "open eur", "100.00", "EUR")  # 120.00
    _deal(crm, acme, "won eur", "100.00", "EUR", "Won", dt.date(2026, 2, 15))  # 110.00
    _deal(crm, acme, "won gbp", "10.00", "GBP", "Won", dt.date(2026, 2, 15))  # 15.00
    _deal(crm, acme, "open usd", "70.00", "USD")  # 70.00
    _deal(crm, acme, "open nok", "999.00", "NOK")  # no rate
    listing = {
        "entity": "deals",
        "select": ["title", "value_reporting", "weighted_reporting"],
        "where": {"combinator": "and", "rules": [{"field": "value_reporting", "operator": ">=", "value": 70}]},
        "order_by": ["-value_reporting"],
    }
    totals = {
        "entity": "deals",
        "group_by": ["stage.name"],
        "aggregates": [
            {"fn": "sum", "field": "value_reporting", "as": "total"},
            {"fn": "count", "field": "value_reporting", "as": "converted"},
            {"fn": "count", "as": "deals"},
        ],
        "order_by": ["stage.name"],
    }
    # Lead's probability is 0.1000, Won's 1.0000 (sql/001_core_schema.sql).
    expected_listing = [
        ("open eur", Decimal("120.00"), Decimal("12.00")),
        ("won eur", Decimal("110.00"), Decimal("110.00")),
        ("open usd", Decimal("70.00"), Decimal("7.00")),
    ]
    expected_totals = [("Lead", Decimal("190.00"), 2, 3), ("Won", Decimal("125.00"), 2, 2)]
    folder = crm.snapshot(out=tmp_path / "snaps")
    for backend, snap in (("postgres", None), ("duckdb", folder)):
        got = crm.query(listing, backend=backend, snapshot=snap)
        assert got.rows() == expected_listing, backend
        got = crm.query(totals, backend=backend, snapshot=snap)
        assert got.rows() == expected_totals, backend
