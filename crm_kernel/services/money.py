"""Money: the reporting currency, dated exchange rates into it, and converted deal values.

    crm.money.reporting_currency()              # 'USD'
    crm.money.import_rates("eurofxref-hist.csv")  # the ECB layout or plain currency,date,rate
    crm.money.set_reporting_currency("EUR")     # re-bases every stored rate in one transaction
    crm.money.rate("GBP", on=date(2026, 3, 31)) # the nearest earlier rate, or None

A rate says what one unit of a currency is worth in the reporting currency on a day. The
reporting currency itself has one row with rate 1, so a conversion never special-cases it.
A deal converts at the rate of its close date when it has one (won or lost), else at the
latest rate (:func:`crm_kernel.model.money.converted_value`); a currency without a rate
converts to nothing, and a total built on it says which deals it left out instead of adding
unlike money (:class:`crm_kernel.model.money.Total`).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..access import rules
from ..errors import ValidationError
from ..model import tables
from ..model.currencies import is_currency
from ..model.money import FAR_FUTURE

if TYPE_CHECKING:
    import polars as pl

    from ..client import CRM

# The reporting currency's own row: rate 1 from the beginning of time.
ORIGIN = dt.date(1900, 1, 1)
RATE_SCALE = Decimal("1e-12")


class MoneyService:
    """``crm.money``: the reporting currency and exchange rates."""

    def __init__(self, crm: CRM):
        self.crm = crm
        self.rates_table = tables.table("exchange_rates")
        self.settings = tables.table("crm_settings")

    # -- the reporting currency ------------------------------------------------------------

    def reporting_currency(self, conn: sa.Connection | None = None) -> str:
        stmt = sa.select(self.settings.c.value).where(self.settings.c.key == "reporting_currency")
        if conn is not None:
            return conn.execute(stmt).scalar_one()
        with self.crm.engine.connect() as own:
            return own.execute(stmt).scalar_one()

    def set_reporting_currency(self, code: str) -> str:
        """Make ``code`` the reporting currency, re-basing every stored rate to it.

        Each rate is divided by the new currency's rate on the same day (the nearest earlier
        one, else the earliest); the old reporting currency gets a rate per day the new one
        had. Refused when there are no rates for ``code`` to re-base with.
        """
        new = _currency_code(code, "currency")
        with self.crm.transaction() as conn:
            rules.check_write(self.crm, conn, "crm_settings", {"reporting_currency": new}, None)
            conn.exec_driver_sql("LOCK TABLE exchange_rates IN EXCLUSIVE MODE")
            old = self.reporting_currency(conn)
            if new == old:
                return new
            r = self.rates_table
            known = conn.execute(sa.select(sa.func.count()).where(r.c.currency == new)).scalar_one()
            if not known:
                raise ValidationError(
                    {"currency": f"there are no exchange rates for {new}; import them first (rates into {old})"},
                    "exchange_rates",
                )
            for statement in _REBASE:
                conn.execute(sa.text(statement), {"new": new, "old": old, "origin": ORIGIN})
            conn.execute(
                sa.update(self.settings)
                .where(self.settings.c.key == "reporting_currency")
                .values(value=new, updated_at=sa.func.now(), updated_by=self.crm.user_id)
            )
        return new

    # -- rates -----------------------------------------------------------------------------

    def set_rate(self, currency: str, on: dt.date | str, rate, source: str | None = "manual") -> None:
        """Store one rate (replacing that day's); ``rate`` is the reporting-currency value of one unit."""
        row = _rate_row(currency, on, rate, "rate")
        self._store([(*row, source)])

    def import_rates(self, source: str | Path | io.TextIOBase, *, layout: str = "auto") -> dict[str, int]:
        """Load rates from a CSV file; returns how many rows each currency got.

        Two layouts: plain ``currency,date,rate`` (rates into the reporting currency), and the
        European Central Bank's reference rates (``Date,USD,JPY,...``, units per euro, ``N/A``
        for none), re-based to the reporting currency. All rows are stored or, when one is
        wrong, none: the error names its line and column.
        """
        text = source.read() if hasattr(source, "read") else Path(source).read_text(encoding="utf-8-sig")
        name = getattr(source, "name", None) or str(source)
        rows = list(csv.reader(io.StringIO(text)))
        rows = [row for row in rows if any(cell.strip() for cell in row)]
        if not rows:
            raise ValidationError({"file": f"{name} has no rows"}, "exchange_rates")
        header = [cell.strip() for cell in rows[0]]
        if layout == "auto":
            layout = "ecb" if header and header[0].lower() == "date" else "plain"
        reporting = self.reporting_currency()
        if layout == "plain":
            parsed = _plain_rows(header, rows[1:], name)
        elif layout == "ecb":
            parsed = _ecb_rows(header, rows[1:], name, reporting)
        else:
            raise ValidationError({"layout": f"unknown layout {layout!r}; use auto, plain or ecb"}, "exchange_rates")
        parsed = [row for row in parsed if row[0] != reporting]  # its rate is 1 by definition
        source_name = Path(name).name if name else None
        self._store([(*row, source_name) for row in parsed])
        counts: dict[str, int] = {}
        for code, _, _ in parsed:
            counts[code] = counts.get(code, 0) + 1
        return counts

    def rate(self, currency: str, on: dt.date | None = None) -> Decimal | None:
        """The rate that applies on ``on`` (the nearest earlier), the latest without a date; None if none."""
        r = self.rates_table
        stmt = sa.select(r.c.rate).where(
            r.c.currency == _currency_code(currency, "currency"), r.c.rate_date <= (on or FAR_FUTURE)
        )
        with self.crm.engine.connect() as conn:
            return conn.execute(stmt.order_by(r.c.rate_date.desc()).limit(1)).scalar()

    def rates(self, currency: str | None = None) -> pl.DataFrame:
        """Stored rates (currency, rate_date, rate, source), oldest first."""
        import polars as pl  # here only: a board asks for the reporting currency, never for rates

        r = self.rates_table
        stmt = sa.select(r.c.currency, r.c.rate_date, r.c.rate, r.c.source).order_by(r.c.currency, r.c.rate_date)
        if currency is not None:
            stmt = stmt.where(r.c.currency == _currency_code(currency, "currency"))
        with self.crm.engine.connect() as conn:
            rows = conn.execute(stmt).all()
        return pl.DataFrame(
            rows,
            schema={"currency": pl.String, "rate_date": pl.Date, "rate": pl.Decimal(24, 12), "source": pl.String},
            orient="row",
        )

    def _store(self, rows: list[tuple]) -> None:
        if not rows:
            return
        with self.crm.transaction() as conn:
            rules.check_write(self.crm, conn, "exchange_rates", {}, None)
            conn.execute(
                sa.text(_UPSERT), [{"currency": c, "rate_date": d, "rate": rate, "source": s} for c, d, rate, s in rows]
            )


_UPSERT = """
INSERT INTO exchange_rates (currency, rate_date, rate, source)
VALUES (:currency, :rate_date, :rate, :source)
ON CONFLICT (currency, rate_date) DO UPDATE SET rate = excluded.rate, source = excluded.source
"""

# Re-basing, in order: divide every other currency's rates by the new reporting currency's rate
# of the same day (the nearest earlier, else its earliest); drop the old reporting currency's
# rate of 1 and give it one row per day the new one had a rate; the new one keeps only rate 1.
_REBASE = (
    """
    UPDATE exchange_rates r SET rate = round(r.rate / coalesce(
        (SELECT n.rate FROM exchange_rates n WHERE n.currency = :new AND n.rate_date <= r.rate_date
         ORDER BY n.rate_date DESC LIMIT 1),
        (SELECT n.rate FROM exchange_rates n WHERE n.currency = :new ORDER BY n.rate_date LIMIT 1)), 12)
    WHERE r.currency NOT IN (:new, :old)
    """,
    "DELETE FROM exchange_rates WHERE currency = :old",
    """
    INSERT INTO exchange_rates (currency, rate_date, rate, source)
    SELECT :old, n.rate_date, round(1 / n.rate, 12), 'rebased to ' || :new
    FROM exchange_rates n WHERE n.currency = :new
    """,
    "DELETE FROM exchange_rates WHERE currency = :new",
    "INSERT INTO exchange_rates (currency, rate_date, rate, source) VALUES (:new, :origin, 1, 'reporting currency')",
)


def _currency_code(value, where: str) -> str:
    code = str(value).strip().upper()
    if not is_currency(code):
        raise ValidationError({where: f"{value!r} is not an ISO 4217 currency code"}, "exchange_rates")
    return code


def _rate_row(currency, on, rate, where: str) -> tuple[str, dt.date, Decimal]:
    code = _currency_code(currency, f"{where}: currency")
    try:
        day = on if isinstance(on, dt.date) else dt.date.fromisoformat(str(on).strip())
    except ValueError:
        raise ValidationError({f"{where}: date": f"{on!r} is not a date like 2026-01-31"}, "exchange_rates") from None
    value = _positive(rate, f"{where}: rate")
    return code, day, value


def _positive(rate, where: str) -> Decimal:
    try:
        value = Decimal(str(rate).strip())
    except InvalidOperation:
        raise ValidationError({where: f"{rate!r} is not a number"}, "exchange_rates") from None
    if not value.is_finite() or value <= 0:
        raise ValidationError({where: f"{rate!r} is not a positive rate"}, "exchange_rates")
    quantized = value.quantize(RATE_SCALE)
    if quantized == 0 or quantized.adjusted() >= 12:
        raise ValidationError(
            {where: f"{rate!r} is out of range (12 digits before and after the point)"}, "exchange_rates"
        )
    return quantized


def _plain_rows(header: list[str], rows: list[list[str]], name: str) -> list[tuple]:
    columns = [h.lower() for h in header]
    missing = [c for c in ("currency", "date", "rate") if c not in columns]
    if missing:
        raise ValidationError(
            {"header": f"{name} needs the columns currency, date, rate; missing {', '.join(missing)}"}, "exchange_rates"
        )
    at = {c: columns.index(c) for c in ("currency", "date", "rate")}
    out = []
    for line, row in enumerate(rows, start=2):
        cells = {c: (row[i] if i < len(row) else "") for c, i in at.items()}
        out.append(_rate_row(cells["currency"], cells["date"], cells["rate"], f"line {line}"))
    return out


def _ecb_rows(header: list[str], rows: list[list[str]], name: str, reporting: str) -> list[tuple]:
    """Units per euro -> the reporting-currency value of one unit: ``per_euro[R] / per_euro[c]``."""
    codes = []
    for column, code in enumerate(header[1:], start=2):
        if not code:  # the ECB's files end every line with a comma
            continue
        codes.append((column - 1, _currency_code(code, f"line 1, column {column}")))
    if reporting != "EUR" and reporting not in {c for _, c in codes}:
        raise ValidationError(
            {"header": f"{name} has no {reporting} column to re-base its euro rates to {reporting}"}, "exchange_rates"
        )
    out = []
    for line, row in enumerate(rows, start=2):
        day = _rate_row("EUR", row[0], 1, f"line {line}")[1]
        per_euro = {"EUR": Decimal(1)}
        for index, code in codes:
            cell = row[index].strip() if index < len(row) else ""
            if cell in ("", "N/A", "NA", "-"):
                continue
            per_euro[code] = _positive(cell, f"line {line}, {code}")
        if reporting not in per_euro:
            continue  # no way to re-base that day
        for code, units in per_euro.items():
            out.append((code, day, (per_euro[reporting] / units).quantize(RATE_SCALE)))
    return out
