"""The deals' past, read from the audit log, as polars frames that both engines give alike.

Every deal write leaves an audit row whose ``after`` is the deal row as JSON. The state of a
deal at a moment T is the ``after`` of its latest audit row at or before T (none: it did not
exist yet; ``deleted_at`` set: it was gone). :class:`History` asks the engine for exactly
that (PostgreSQL, or DuckDB over a snapshot, which exports ``audit_log`` too), with every
field cast to one declared type, so the analytics on top run the same polars code on the
same frames whichever engine answered.

    history = History(Source(crm, "duckdb", snapshot=folder))
    history.states(as_of=dt.date(2026, 3, 31))   # one row per deal as it stood then

Money: :meth:`History.convert` turns a value into whole cents of the reporting currency at the
nearest earlier rate of a given day (the latest rate when the day is None); no rate gives
null, which callers count and report instead of adding unlike money.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from decimal import Decimal
from typing import TYPE_CHECKING

import polars as pl

from ..errors import QuerySpecError
from ..model.money import FAR_FUTURE, missing_note
from ..query.engines import engine

if TYPE_CHECKING:
    from ..client import CRM

UTC = dt.UTC
DAY = 86_400.0

# What a deal is at one moment, from an audit image or the deals table.
DEAL_FIELDS = {
    "deal_id": pl.String,
    "stage_id": pl.String,
    "value": pl.Decimal(12, 2),
    "currency": pl.String,
    "expected_close_date": pl.Date,
    "actual_close_date": pl.Date,
    "owner_id": pl.String,
    "probability": pl.Decimal(5, 4),
    "deleted": pl.Boolean,
}

# The frame every deal state comes in, from the audit log or from the deals table.
STATE_SCHEMA = {
    **DEAL_FIELDS,
    "company_id": pl.String,
    "lead_source": pl.String,
    "created_at": pl.Datetime("us", "UTC"),
    "entered_at": pl.Datetime("us", "UTC"),
}

# One row per audit row of a deal: its state after the write, and what changed.
EVENT_SCHEMA = {
    "audit_id": pl.Int64,
    "at": pl.Datetime("us", "UTC"),
    "operation": pl.String,
    **DEAL_FIELDS,
    "stage_changed": pl.Boolean,
    "before_close_date": pl.Date,
}

STAGE_SCHEMA = {
    "stage_id": pl.String,
    "stage": pl.String,
    "position": pl.Int64,
    "stage_probability": pl.Decimal(5, 4),
    "is_won": pl.Boolean,
    "is_lost": pl.Boolean,
    "is_active": pl.Boolean,
}
RATE_SCHEMA = {"currency": pl.String, "rate_date": pl.Date, "rate": pl.Decimal(24, 12)}

# The deal fields an audit image holds, read alike on both engines and cast to one type each.
# Each engine reads them its fastest way (Source.deal_sql): PostgreSQL's jsonb ->> is cheap,
# while DuckDB re-parses its JSON text for every ->>, so there an image is parsed once into
# a text array. DuckDB re-prints numbers (100.10 as 100.1); the casts undo that.
IMAGE_KEYS = (
    "stage_id",
    "value",
    "currency",
    "expected_close_date",
    "actual_close_date",
    "owner_id",
    "probability",
    "deleted_at",
    "company_id",
    "lead_source",
)
_FIELDS = """
    CAST(s.entity_id AS text) AS deal_id,
    {stage_id} AS stage_id,
    CAST({value} AS numeric(12, 2)) AS value,
    {currency} AS currency,
    CAST({expected_close_date} AS date) AS expected_close_date,
    CAST({actual_close_date} AS date) AS actual_close_date,
    {owner_id} AS owner_id,
    CAST({probability} AS numeric(5, 4)) AS probability,
    (s.img IS NULL OR {deleted_at} IS NOT NULL) AS deleted"""

# Each image is parsed once: the window functions compare a deal's stage and close date with
# those of its previous audit row (the same as its ``before`` image when the chain is whole,
# without parsing that too). A deal enters a stage when created or when its stage changes.
_EVENTS = """
SELECT s.audit_id, s.at, s.operation, {fields}, s.stage_changed, s.before_close_date
FROM (
    SELECT a.audit_id, a.at, a.operation, a.entity_id, a.img,
        {a_stage_id} IS DISTINCT FROM lag({a_stage_id}) OVER w AS stage_changed,
        CAST(lag({a_expected_close_date}) OVER w AS date) AS before_close_date
    FROM (
        SELECT a.id AS audit_id, a.at, a.operation, a.entity_id, {image} AS img
        FROM audit_log a
        WHERE a.entity = 'deals' AND a.at <= :upto
    ) a
    WINDOW w AS (PARTITION BY a.entity_id ORDER BY a.at, a.audit_id)
) s
WHERE s.at > :since
ORDER BY s.at, s.audit_id
"""

# The latest image at or before the moment, with when the deal was created and entered its stage.
_STATES = """
SELECT {fields}, {company_id} AS company_id, {lead_source} AS lead_source, s.created_at, s.entered_at
FROM (
    SELECT a.entity_id, a.img,
        min(a.at) OVER (PARTITION BY a.entity_id) AS created_at,
        max(CASE WHEN a.enters THEN a.at END) OVER (PARTITION BY a.entity_id) AS entered_at,
        row_number() OVER (PARTITION BY a.entity_id ORDER BY a.at DESC, a.audit_id DESC) AS latest
    FROM (
        SELECT a.entity_id, a.at, a.audit_id, a.img,
            {a_stage_id} IS DISTINCT FROM lag({a_stage_id}) OVER (PARTITION BY a.entity_id ORDER BY a.at, a.audit_id)
                AS enters
        FROM (
            SELECT a.id AS audit_id, a.at, a.entity_id, {image} AS img
            FROM audit_log a
            WHERE a.entity = 'deals' AND a.at <= :upto
        ) a
    ) a
) s
WHERE s.latest = 1
"""

_CURRENT = """
SELECT CAST(d.id AS text) AS deal_id, CAST(d.stage_id AS text) AS stage_id, d.value, d.currency,
    d.expected_close_date, d.actual_close_date, CAST(d.owner_id AS text) AS owner_id, d.probability,
    false AS deleted, CAST(d.company_id AS text) AS company_id, d.lead_source, d.created_at,
    d.stage_entered_at AS entered_at
FROM {deals} d
WHERE d.deleted_at IS NULL
"""


class Source:
    """Where the analytics read from: PostgreSQL, or DuckDB over a snapshot, through the
    engine's :class:`~crm_kernel.query.engines.base.SqlReader`.

    ``sql`` uses ``:name`` parameters on both engines; results are cast to the declared
    polars schema, timestamps to UTC, so frames from either engine compare equal.
    """

    def __init__(self, crm: CRM, backend: str = "postgres", snapshot=None):
        self.engine = engine(backend)
        if not self.engine.uses_snapshot and snapshot is not None:
            raise QuerySpecError("snapshot", f"a snapshot is for a snapshot engine, not backend={backend!r}")
        self.crm = crm
        self.backend = backend
        self._snapshot = snapshot
        self._opened = None
        self._reader = None

    def __enter__(self) -> Source:
        self._opened = self.engine.reader(self.crm, self._snapshot)
        self._reader = self._opened.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        opened, self._opened, self._reader = self._opened, None, None
        if opened is not None:
            opened.__exit__(*exc)

    @property
    def reader(self):
        if self._reader is None:
            raise RuntimeError("Source used outside its with-block")
        return self._reader

    def deal_sql(self, template: str) -> str:
        """An audit-log query in this engine's way of reading the images' fields: ``img`` is
        the image read once (PostgreSQL: the jsonb itself, read with ->>; DuckDB: its fields
        parsed at once into a text array, as DuckDB parses JSON text again for every ->>)."""
        reader = self.reader
        image = reader.json_record('a."after"', IMAGE_KEYS)

        def field(alias: str, key: str) -> str:
            return reader.json_field(f"{alias}.img", IMAGE_KEYS, key)

        fields = {key: field("s", key) for key in IMAGE_KEYS}
        fields.update({f"a_{key}": field("a", key) for key in IMAGE_KEYS})
        return template.format(fields=_FIELDS.format(**fields), image=image, **fields)

    def table(self, name: str, *, with_deleted: bool = False) -> str:
        """A table's name in this engine; a snapshot's views hide soft-deleted rows unless asked."""
        return self.reader.table(name, with_deleted=with_deleted)

    def frame(self, sql: str, schema: dict, params: dict | None = None) -> pl.DataFrame:
        frame = self.reader.frame(sql, params or {})
        frame.columns = list(schema)
        return _conform(frame, schema)


def _conform(frame: pl.DataFrame, schema: dict) -> pl.DataFrame:
    columns = []
    for name, dtype in schema.items():
        col = pl.col(name)
        current = frame.schema[name]
        if isinstance(dtype, pl.Datetime):
            if current == pl.Null:
                col = col.cast(dtype)
            elif getattr(current, "time_zone", None) is None:
                col = col.cast(pl.Datetime("us")).dt.replace_time_zone("UTC")
            else:
                col = col.dt.convert_time_zone("UTC").cast(dtype)
        else:
            col = col.cast(dtype)
        columns.append(col.alias(name))
    return frame.select(columns) if frame.width else pl.DataFrame(schema=schema)


class History:
    """Deal states and events from one source, plus the lookups and rates the analytics need."""

    def __init__(self, source: Source, *, timezone: str = "UTC", now: dt.datetime | None = None):
        self.source = source
        self.zone = zoneinfo.ZoneInfo(timezone)
        self.now = now.astimezone(UTC) if now is not None else dt.datetime.now(UTC)
        self._cache: dict = {}

    # -- moments ---------------------------------------------------------------------------

    def moment(self, value, edge: str = "end") -> dt.datetime:
        """A date means its last moment (``edge="end"``) or its first (``"start"``) in the CRM's
        time zone; a naive timestamp is in that zone; the result is in UTC."""
        if value is None:
            return self.now
        if isinstance(value, str):
            try:
                value = (
                    dt.datetime.fromisoformat(value) if "T" in value or " " in value else dt.date.fromisoformat(value)
                )
            except ValueError:
                raise QuerySpecError("as_of", f"{value!r} is not a date or timestamp") from None
        if isinstance(value, dt.datetime):
            return (value if value.tzinfo else value.replace(tzinfo=self.zone)).astimezone(UTC)
        if isinstance(value, dt.date):
            day = value + dt.timedelta(days=1) if edge == "end" else value
            start = dt.datetime.combine(day, dt.time(0), self.zone).astimezone(UTC)
            return start - dt.timedelta(microseconds=1) if edge == "end" else start
        raise QuerySpecError("as_of", f"{value!r} is not a date or timestamp")

    def day(self, moment: dt.datetime) -> dt.date:
        """The calendar day of a moment in the CRM's time zone."""
        return moment.astimezone(self.zone).date()

    # -- frames ----------------------------------------------------------------------------

    def states(self, as_of=None, *, with_deleted: bool = False) -> pl.DataFrame:
        """One row per deal as it stood at ``as_of`` (None: now, from the deals table), with its
        stage, owner and company details joined; deleted deals only ``with_deleted``."""
        key = ("states", None if as_of is None else self.moment(as_of))
        if key not in self._cache:  # a backtest asks for the same moment more than once
            if as_of is None:
                frame = self.source.frame(_CURRENT.format(deals=self.source.table("deals")), STATE_SCHEMA)
            else:
                frame = self.source.frame(self.source.deal_sql(_STATES), STATE_SCHEMA, {"upto": key[1]})
            self._cache[key] = self._details(frame)
        frame = self._cache[key]
        return frame if with_deleted else frame.filter(~pl.col("deleted"))

    def events(self, upto=None, since=None) -> pl.DataFrame:
        """Every audit row of a deal in (``since``, ``upto``], oldest first."""
        last = self.moment(upto)
        if since is not None:
            params = {"upto": last, "since": self.moment(since)}
            return self.source.frame(self.source.deal_sql(_EVENTS), EVENT_SCHEMA, params)
        # The whole history up to now is read once and cut in memory: replaying the past (a
        # backtest) asks for it as of several moments.
        reach = max(last, self.now)
        key = ("events", reach)
        if key not in self._cache:
            params = {"upto": reach, "since": dt.datetime(1, 1, 2, tzinfo=UTC)}
            self._cache[key] = self.source.frame(self.source.deal_sql(_EVENTS), EVENT_SCHEMA, params)
        events = self._cache[key]
        return events if last == reach else events.filter(pl.col("at") <= last)

    def stages(self) -> pl.DataFrame:
        if "stages" not in self._cache:
            self._cache["stages"] = self.source.frame(
                f"""
                SELECT CAST(id AS text), name, position, probability, is_closed_won, is_closed_lost,
                    is_active AND deleted_at IS NULL
                FROM {self.source.table("pipeline_stages", with_deleted=True)}""",
                STAGE_SCHEMA,
            )
        return self._cache["stages"]

    def open_stages(self) -> pl.DataFrame:
        """Active stages that are neither won nor lost, in board order."""
        return self.stages().filter(pl.col("is_active") & ~pl.col("is_won") & ~pl.col("is_lost")).sort("position")

    def rates(self) -> pl.DataFrame:
        if "rates" not in self._cache:
            self._cache["rates"] = self.source.frame(
                "SELECT currency, rate_date, rate FROM exchange_rates ORDER BY rate_date", RATE_SCHEMA
            )
        return self._cache["rates"]

    def reporting_currency(self) -> str:
        if "reporting" not in self._cache:
            frame = self.source.frame(
                "SELECT CAST(value AS text) AS code FROM crm_settings WHERE key = 'reporting_currency'",
                {"code": pl.String},
            )
            self._cache["reporting"] = frame["code"][0].strip().strip('"')
        return self._cache["reporting"]

    def _details(self, states: pl.DataFrame) -> pl.DataFrame:
        users = self._lookup("users", "full_name", "owner_id", "owner")
        companies = self._lookup("companies", "industry", "company_id", "industry")
        return (
            states.join(self.stages(), on="stage_id", how="left")
            .join(users, on="owner_id", how="left")
            .join(companies, on="company_id", how="left")
            .with_columns(
                open=~pl.col("is_won").fill_null(False) & ~pl.col("is_lost").fill_null(False) & ~pl.col("deleted")
            )
        )

    def _lookup(self, table: str, column: str, key: str, name: str) -> pl.DataFrame:
        if table not in self._cache:
            self._cache[table] = self.source.frame(
                f"SELECT CAST(id AS text) AS {key}, {column} AS {name} "
                f"FROM {self.source.table(table, with_deleted=True)}",
                {key: pl.String, name: pl.String},
            )
        return self._cache[table]

    # -- money -----------------------------------------------------------------------------

    def convert(
        self,
        frame: pl.DataFrame,
        day: str | dt.date | None,
        *,
        value: str = "value",
        currency: str = "currency",
        out: str = "cents",
    ) -> pl.DataFrame:
        """Add ``out``: ``value`` in whole cents of the reporting currency at the nearest rate on
        or before ``day`` (a date column's name, a date, or None for the latest rate).

        Rounds half up, as PostgreSQL's ``round(value * rate, 2)`` does. A missing value is 0;
        a value whose currency has no rate that day gives null (see :func:`left_out`).
        """
        if isinstance(day, str):
            days = pl.col(day).fill_null(FAR_FUTURE)
        else:
            days = pl.lit(day or FAR_FUTURE, dtype=pl.Date)
        keyed = frame.with_row_index("_row").with_columns(_day=days, _currency=pl.col(currency))
        rates = self.rates().rename({"currency": "_currency", "rate_date": "_day"}).sort("_day")
        joined = (
            keyed.sort("_day")
            .join_asof(rates, on="_day", by="_currency", strategy="backward", check_sortedness=False)
            .sort("_row")
        )
        cents = (
            (pl.col(value).cast(pl.Decimal(38, 12)) * pl.col("rate") * 100 + pl.lit(Decimal("0.5")))
            .floor()
            .cast(pl.Int64)
        )
        return joined.with_columns(
            pl.when(pl.col(value).is_null()).then(pl.lit(0, pl.Int64)).otherwise(cents).alias(out)
        ).drop("_row", "_day", "_currency", "rate")


def weighted_cents(cents: pl.Expr, probability: pl.Expr) -> pl.Expr:
    """``cents * probability`` rounded half up to a whole cent."""
    return (
        (cents.cast(pl.Decimal(38, 4)) * probability.cast(pl.Decimal(38, 4)) + pl.lit(Decimal("0.5")))
        .floor()
        .cast(pl.Int64)
    )


def amount(cents: pl.Expr) -> pl.Expr:
    """Whole cents as an amount (sums are taken in cents, so they reconcile exactly)."""
    return (cents.cast(pl.Float64) / 100).round(2)


def left_out(frame: pl.DataFrame, keys: list[str], cents: str = "cents") -> pl.DataFrame:
    """Per group of ``keys``: ``left_out`` (deals whose currency had no rate) and
    ``left_out_note`` ("3 deals in NOK without a rate are not included", or null)."""
    missing = frame.filter(pl.col(cents).is_null())
    schema = {k: frame.schema[k] for k in keys}
    if missing.is_empty():
        return pl.DataFrame(schema={**schema, "left_out": pl.Int64, "left_out_note": pl.String})
    counts = missing.group_by([*keys, "currency"]).len()
    rows = []
    for group, part in counts.group_by(keys, maintain_order=True):
        per = {code: int(n) for code, n in zip(part["currency"], part["len"], strict=True)}
        rows.append((*group, sum(per.values()), missing_note(per)))
    return pl.DataFrame(rows, schema={**schema, "left_out": pl.Int64, "left_out_note": pl.String}, orient="row")


def days_between(later: pl.Expr, earlier: pl.Expr) -> pl.Expr:
    """Fractional days from ``earlier`` to ``later`` (timestamps)."""
    return (later - earlier).dt.total_microseconds().cast(pl.Float64) / (DAY * 1e6)


def period_start(column: pl.Expr, period: str) -> pl.Expr:
    """The first day of the month or quarter a date falls in."""
    return column.dt.truncate(_EVERY[_period(period)])


def next_period(day: dt.date, period: str) -> dt.date:
    step = 3 if _period(period) == "quarter" else 1
    month = day.month - 1 + step
    return dt.date(day.year + month // 12, month % 12 + 1, 1)


def first_day(day: dt.date, period: str) -> dt.date:
    if _period(period) == "quarter":
        return dt.date(day.year, (day.month - 1) // 3 * 3 + 1, 1)
    return dt.date(day.year, day.month, 1)


_EVERY = {"month": "1mo", "quarter": "1q"}


def _period(period: str) -> str:
    if period not in _EVERY:
        raise QuerySpecError("period", f"unknown period {period!r}; use month or quarter")
    return period
