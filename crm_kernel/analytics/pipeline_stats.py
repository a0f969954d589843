"""The pipeline from its history: as of any moment, how it moved (waterfall), how deals flow
through the stages (funnel, velocity), close dates that slip, win rates and cycle times.

Each function takes a :class:`~crm_kernel.analytics.history.History` and returns a polars
DataFrame. Amounts are in the reporting currency, summed in whole cents; a deal whose
currency has no rate is never added in: ``left_out`` counts such deals per row and
``left_out_note`` names their currencies.
"""

from __future__ import annotations

import datetime as dt

import polars as pl

from ..errors import QuerySpecError
from .history import History, amount, days_between, left_out, weighted_cents

PIPELINE_BY = {"stage": "stage", "owner": "owner", "month": "month"}
SEGMENTS = ("owner", "industry", "size_band", "lead_source", "month")  # month: of the close date
# Deal size bands in the reporting currency: lower bounds of the bands above the first.
SIZE_BANDS = (10_000, 50_000, 100_000)
WATERFALL = (
    "open_at_start",
    "new",
    "reopened",
    "pulled_in",
    "increased",
    "decreased",
    "pushed_out",
    "won",
    "lost",
    "deleted",
    "open_at_end",
)


def _with_left_out(summary: pl.DataFrame, frame: pl.DataFrame, keys: list[str], cents: str = "cents") -> pl.DataFrame:
    missing = left_out(frame, keys, cents)
    joined = summary.join(missing, on=keys, how="left", nulls_equal=True)
    return joined.with_columns(pl.col("left_out").fill_null(0))


# -- pipeline ------------------------------------------------------------------------------


def pipeline(history: History, by: str = "stage", as_of=None) -> pl.DataFrame:
    """Open deals per stage, owner or expected close month, as they stood at ``as_of``.

    Columns: ``<by>``, ``deals``, ``value``, ``weighted`` (value x the deal's probability, else
    its stage's), ``avg_value`` (over converted deals), ``avg_days_in_stage``, ``left_out``,
    ``left_out_note``. Open deals convert at the latest rate known on ``as_of``'s day (today's
    latest without ``as_of``, as ``deals.value_reporting`` does).
    """
    if by not in PIPELINE_BY:
        raise QuerySpecError("by", f"unknown grouping {by!r}; use stage, owner or month")
    moment = history.moment(as_of)
    states = history.states(as_of).filter(pl.col("open"))
    states = history.convert(states, history.day(moment) if as_of is not None else None)
    states = states.with_columns(
        weighted=weighted_cents(pl.col("cents"), pl.coalesce("probability", "stage_probability")),
        days=days_between(pl.lit(moment, pl.Datetime("us", "UTC")), pl.col("entered_at")),
        month=pl.col("expected_close_date").dt.truncate("1mo"),
    )
    summary = states.group_by(by).agg(
        deals=pl.len().cast(pl.Int64),
        _cents=pl.col("cents").sum(),
        _weighted=pl.col("weighted").sum(),
        _converted=pl.col("cents").is_not_null().sum(),
        avg_days_in_stage=pl.col("days").mean(),
    )
    if by == "stage":
        stages = history.open_stages().select("stage", "position")
        summary = (
            stages.join(summary, on="stage", how="full", coalesce=True)
            .join(history.stages().select("stage", pl.col("position").alias("_p")), on="stage", how="left")
            .with_columns(pl.coalesce("position", "_p").alias("position"))
            .sort("position")
            .drop("position", "_p")
        )
    else:
        summary = summary.sort(by, nulls_last=True)
    summary = summary.with_columns(
        deals=pl.col("deals").fill_null(0),
        value=amount(pl.col("_cents").fill_null(0)),
        weighted=amount(pl.col("_weighted").fill_null(0)),
        avg_value=pl.when(pl.col("_converted") > 0).then(amount(pl.col("_cents")) / pl.col("_converted")).round(2),
    )
    out = _with_left_out(summary, states, [by])
    return out.select(by, "deals", "value", "weighted", "avg_value", "avg_days_in_stage", "left_out", "left_out_note")


# -- waterfall -----------------------------------------------------------------------------


def waterfall(
    history: History, start, end, close_from: dt.date | None = None, close_to: dt.date | None = None
) -> pl.DataFrame:
    """How the open pipeline got from ``start`` to ``end``, one row per category.

    In scope: open deals, and when ``close_from``/``close_to`` are given, only those expected to
    close within them. ``value`` is signed: what the category adds to the pipeline, so the
    rows before ``open_at_end`` sum to it exactly. ``deals`` counts deals: those arriving
    (``new``, ``reopened``, ``pulled_in``) less those leaving (``pushed_out``, ``won``, ``lost``,
    ``deleted``) take ``open_at_start`` to ``open_at_end``; ``increased``/``decreased`` count
    deals whose value changed while in scope.

    Each deal converts at one rate for the whole waterfall: its close date's when it is won
    or lost at ``end``, else the rate of ``end``'s day. So exchange-rate moves never show as
    movements. A deal in scope at start and at end is counted only for the change of its
    value; one that leaves enters ``increased``/``decreased`` for its change up to then and
    leaves at its value at ``end`` (``won``, ``lost``, ``pushed_out`` of the close-date window,
    ``deleted``); one that arrives comes in at its value at ``end`` (``new`` -- also a restored
    one -- ``reopened``, or ``pulled_in``). A deal that came and went within the period (created
    and won, say) shows on both sides. A deal without a rate is left out of every row.
    """
    s, e = history.moment(start, "start"), history.moment(end, "end")
    if s >= e:
        raise QuerySpecError("start", f"start {start} is not before end {end}")
    at_start = _scoped(history.states(s, with_deleted=True), close_from, close_to)
    at_end = _scoped(history.states(e, with_deleted=True), close_from, close_to)
    between = history.events(upto=e, since=s).join(history.stages(), on="stage_id", how="left")
    passed = (
        between.filter(
            _in_scope(
                close_from,
                close_to,
                open_=~pl.col("is_won").fill_null(False) & ~pl.col("is_lost").fill_null(False) & ~pl.col("deleted"),
            )
        )
        .select("deal_id")
        .unique()
        .with_columns(passed=pl.lit(True))
    )

    deals = (
        at_end.select(
            "deal_id",
            "stage_id",
            pl.col("value").alias("v_end"),
            pl.col("currency").alias("c_end"),
            pl.col("status").alias("end"),
            pl.col("in_scope").alias("in_end"),
            "actual_close_date",
            "is_won",
            "is_lost",
        )
        .join(
            at_start.select(
                "deal_id",
                pl.col("value").alias("v_start"),
                pl.col("currency").alias("c_start"),
                pl.col("status").alias("start"),
                pl.col("in_scope").alias("in_start"),
            ),
            on="deal_id",
            how="full",
            coalesce=True,
        )
        .join(passed, on="deal_id", how="left")
        .with_columns(
            pl.col("start").fill_null("absent").replace("deleted", "absent"),
            pl.col("in_start").fill_null(False),
            pl.col("in_end").fill_null(False),
            pl.col("passed").fill_null(False),
        )
    )
    deals = deals.filter(pl.col("in_start") | pl.col("in_end") | pl.col("passed"))
    closed = pl.col("end").is_in(["won", "lost"])
    day = pl.when(closed).then(pl.col("actual_close_date")).otherwise(pl.lit(history.day(e)))
    deals = deals.with_columns(_rate_day=day)
    deals = history.convert(deals, "_rate_day", value="v_end", currency="c_end", out="end_cents")
    deals = history.convert(deals, "_rate_day", value="v_start", currency="c_start", out="start_cents")
    deals = deals.with_columns(
        start_cents=pl.when(pl.col("start") == "absent").then(0).otherwise(pl.col("start_cents")),
        currency=pl.coalesce("c_end", "c_start"),
    )

    moves = []
    for row in deals.iter_rows(named=True):
        moves.extend(_movements(row))
    frame = pl.DataFrame(
        moves,
        schema={
            "category": pl.String,
            "deal_id": pl.String,
            "deals": pl.Int64,
            "cents": pl.Int64,
            "currency": pl.String,
        },
        orient="row",
    )
    summary = (
        frame.filter(pl.col("cents").is_not_null())
        .group_by("category")
        .agg(deals=pl.col("deals").sum(), _cents=pl.col("cents").sum())
    )
    categories = pl.DataFrame({"category": list(WATERFALL), "_order": list(range(len(WATERFALL)))})
    out = (
        categories.join(summary, on="category", how="left")
        .sort("_order")
        .with_columns(deals=pl.col("deals").fill_null(0), value=amount(pl.col("_cents").fill_null(0)))
    )
    return _with_left_out(out, frame, ["category"]).select("category", "deals", "value", "left_out", "left_out_note")


def _scoped(states: pl.DataFrame, close_from, close_to) -> pl.DataFrame:
    status = (
        pl.when(pl.col("deleted"))
        .then(pl.lit("deleted"))
        .when(pl.col("is_won").fill_null(False))
        .then(pl.lit("won"))
        .when(pl.col("is_lost").fill_null(False))
        .then(pl.lit("lost"))
        .otherwise(pl.lit("open"))
    )
    return states.with_columns(status=status).with_columns(
        in_scope=_in_scope(close_from, close_to, open_=pl.col("status") == "open")
    )


def _in_scope(close_from, close_to, *, open_: pl.Expr) -> pl.Expr:
    scope = open_
    close = pl.col("expected_close_date")
    if close_from is not None:
        scope = scope & (close >= pl.lit(close_from, pl.Date)).fill_null(False)
    if close_to is not None:
        scope = scope & (close <= pl.lit(close_to, pl.Date)).fill_null(False)
    return scope


def _movements(row: dict) -> list[tuple]:
    """The waterfall rows one deal contributes: (category, deal, deals, signed cents, currency)."""
    deal, currency = row["deal_id"], row["currency"]
    missing = row["start_cents"] is None or row["end_cents"] is None
    start, end = row["start_cents"], row["end_cents"]

    def move(category: str, deals: int, cents):
        return (category, deal, deals, None if missing else cents, currency)

    out = []
    if row["in_start"]:
        out.append(move("open_at_start", 1, start))
    if not row["in_start"]:
        entry = {"absent": "new", "won": "reopened", "lost": "reopened"}.get(row["start"], "pulled_in")
        out.append(move(entry, 1, end))
    elif not missing and end != start:
        out.append(move("increased" if end > start else "decreased", 1, end - start))
    if not row["in_end"]:
        exit_ = {"won": "won", "lost": "lost", "deleted": "deleted"}.get(row["end"], "pushed_out")
        out.append(move(exit_, 1, None if missing else -end))
    else:
        out.append(move("open_at_end", 1, end))
    return out


# -- funnel, velocity, slippage -----------------------------------------------------------


def _entries(history: History, upto=None) -> pl.DataFrame:
    """Each time a deal entered a stage (created in it or moved to it), with the stage's details."""
    return (
        history.events(upto=upto)
        .filter(pl.col("stage_changed"))
        .select("deal_id", "at", "stage_id", "owner_id")
        .join(history.stages(), on="stage_id", how="left")
    )


def funnel(history: History, start, end) -> pl.DataFrame:
    """Deals that entered each stage between ``start`` and ``end``, and how many of them later
    reached a further stage (``reached_next``: any later, not-lost stage) and were won.

    Columns: ``stage``, ``entered``, ``reached_next``, ``next_rate``, ``won``, ``win_rate``
    (shares of ``entered``). Later progress is counted up to now.
    """
    s, e = history.moment(start, "start"), history.moment(end, "end")
    entries = _entries(history)
    first = (
        entries.filter((pl.col("at") >= s) & (pl.col("at") <= e) & ~pl.col("is_lost").fill_null(False))
        .group_by("deal_id", "stage_id", "stage", "position", "is_won")
        .agg(pl.col("at").min().alias("entered_at"))
    )
    later = entries.select(
        "deal_id",
        pl.col("at").alias("later_at"),
        pl.col("position").alias("later_position"),
        pl.col("is_won").alias("later_won"),
        pl.col("is_lost").alias("later_lost"),
    )
    paired = first.join(later, on="deal_id", how="left").filter(pl.col("later_at") >= pl.col("entered_at"))
    progress = paired.group_by("deal_id", "stage").agg(
        reached=((pl.col("later_position") > pl.col("position")) & ~pl.col("later_lost")).any(),
        won=pl.col("later_won").any(),
    )
    per_deal = first.join(progress, on=["deal_id", "stage"], how="left")
    summary = per_deal.group_by("stage").agg(
        entered=pl.len().cast(pl.Int64),
        reached_next=pl.col("reached").fill_null(False).sum().cast(pl.Int64),
        won=pl.col("won").fill_null(False).sum().cast(pl.Int64),
    )
    stages = history.stages().filter(pl.col("is_active") & ~pl.col("is_lost")).select("stage", "position", "is_won")
    out = (
        stages.join(summary, on="stage", how="full", coalesce=True)
        .join(history.stages().select("stage", pl.col("position").alias("_p")), on="stage", how="left")
        .with_columns(pl.coalesce("position", "_p").alias("position"))
        .sort("position")
        .with_columns(pl.col("entered", "reached_next", "won").fill_null(0))
    )
    share = lambda c: pl.when(pl.col("entered") > 0).then(pl.col(c) / pl.col("entered"))  # noqa: E731
    return out.with_columns(
        reached_next=pl.when(pl.col("is_won").fill_null(False)).then(None).otherwise(pl.col("reached_next")),
        next_rate=pl.when(pl.col("is_won").fill_null(False)).then(None).otherwise(share("reached_next")),
        win_rate=share("won"),
    ).select("stage", "entered", "reached_next", "next_rate", "won", "win_rate")


def stays(history: History, upto=None) -> pl.DataFrame:
    """Completed stays in open stages: deal, stage, entered and left (the next stage change), days."""
    entries = _entries(history, upto).sort("deal_id", "at")
    spells = entries.with_columns(left_at=pl.col("at").shift(-1).over("deal_id"))
    return (
        spells.filter(
            pl.col("left_at").is_not_null() & ~pl.col("is_won").fill_null(False) & ~pl.col("is_lost").fill_null(False)
        )
        .with_columns(days=days_between(pl.col("left_at"), pl.col("at")))
        .rename({"at": "entered_at"})
    )


def velocity(history: History, start=None, end=None) -> pl.DataFrame:
    """Days spent in each open stage, from the stage-change history: ``stays`` (completed stays,
    those that left the stage between ``start`` and ``end`` when given), ``median_days``,
    ``p80_days`` (linear interpolation) and ``avg_days``. A deal still in a stage is not
    counted until it leaves."""
    spells = stays(history)
    if start is not None:
        spells = spells.filter(pl.col("left_at") >= history.moment(start, "start"))
    if end is not None:
        spells = spells.filter(pl.col("left_at") <= history.moment(end, "end"))
    summary = spells.group_by("stage").agg(
        stays=pl.len().cast(pl.Int64),
        median_days=pl.col("days").median(),
        p80_days=pl.col("days").quantile(0.8, interpolation="linear"),
        avg_days=pl.col("days").mean(),
    )
    out = history.open_stages().select("stage", "position").join(summary, on="stage", how="left")
    return (
        out.sort("position")
        .with_columns(pl.col("stays").fill_null(0))
        .select("stage", "stays", "median_days", "p80_days", "avg_days")
    )


def slippage(history: History, start=None, end=None) -> pl.DataFrame:
    """Expected close dates pushed later, per owner (the deal's owner at the time of the push).

    Columns: ``owner``, ``deals`` (deals pushed), ``pushes``, ``days_pushed`` (total),
    ``avg_days_per_push``. Only writes between ``start`` and ``end`` when given.
    """
    events = history.events(
        upto=end, since=None if start is None else history.moment(start, "start") - dt.timedelta(microseconds=1)
    )
    pushes = events.filter(
        pl.col("operation").is_in(["update", "move"])
        & (pl.col("expected_close_date") > pl.col("before_close_date")).fill_null(False)
    )
    pushes = pushes.with_columns(days=(pl.col("expected_close_date") - pl.col("before_close_date")).dt.total_days())
    owners = history._lookup("users", "full_name", "owner_id", "owner")
    summary = (
        pushes.join(owners, on="owner_id", how="left")
        .group_by("owner")
        .agg(
            deals=pl.col("deal_id").n_unique().cast(pl.Int64),
            pushes=pl.len().cast(pl.Int64),
            days_pushed=pl.col("days").sum().cast(pl.Int64),
        )
    )
    return summary.with_columns(avg_days_per_push=pl.col("days_pushed") / pl.col("pushes")).sort(
        ["days_pushed", "owner"], descending=[True, False], nulls_last=True
    )


# -- win rate and cycle time ----------------------------------------------------------------


def _closed(history: History, start, end) -> pl.DataFrame:
    closed = history.states().filter(pl.col("is_won").fill_null(False) | pl.col("is_lost").fill_null(False))
    if start is not None:
        closed = closed.filter(pl.col("actual_close_date") >= history.day(history.moment(start, "start")))
    if end is not None:
        closed = closed.filter(pl.col("actual_close_date") <= history.day(history.moment(end, "end")))
    return history.convert(closed, "actual_close_date")


def _segment(frame: pl.DataFrame, by: str, bands) -> pl.DataFrame:
    if by not in SEGMENTS:
        raise QuerySpecError("by", f"unknown segment {by!r}; use {', '.join(SEGMENTS)}")
    if by == "size_band":
        return frame.with_columns(size_band=_band(pl.col("cents"), bands))
    if by == "month":
        return frame.with_columns(month=pl.col("actual_close_date").dt.truncate("1mo"))
    return frame


def _band(cents: pl.Expr, bands) -> pl.Expr:
    bounds = sorted(bands)
    expr = pl.when(cents.is_null()).then(None)
    labels = (
        [f"< {bounds[0]:,}"]
        + [f"{lo:,}\u2013{hi:,}" for lo, hi in zip(bounds, bounds[1:], strict=False)]
        + [f"\u2265 {bounds[-1]:,}"]
    )
    for bound, label in zip(bounds, labels, strict=False):
        expr = expr.when(cents < bound * 100).then(pl.lit(label))
    return expr.otherwise(pl.lit(labels[-1]))


def win_rate(history: History, by: str = "owner", start=None, end=None, bands=SIZE_BANDS) -> pl.DataFrame:
    """Won and lost deals per owner, industry, size band (of the value in the reporting
    currency at the close-date rate) or lead source, closed between ``start`` and ``end``.

    Columns: ``<by>``, ``won``, ``lost``, ``closed``, ``win_rate``, ``won_value``, ``left_out``,
    ``left_out_note``. Without a rate a deal cannot be banded: by size band it falls in the
    row whose band is null.
    """
    closed = _segment(_closed(history, start, end), by, bands)
    won = pl.col("is_won").fill_null(False)
    summary = (
        closed.group_by(by)
        .agg(
            won=won.sum().cast(pl.Int64),
            lost=(~won).sum().cast(pl.Int64),
            _won_cents=pl.col("cents").filter(won).sum(),
        )
        .with_columns(closed=pl.col("won") + pl.col("lost"))
    )
    summary = summary.with_columns(
        win_rate=pl.col("won") / pl.col("closed"), won_value=amount(pl.col("_won_cents").fill_null(0))
    )
    out = _with_left_out(summary, closed, [by]).sort(by, nulls_last=True)
    return out.select(by, "won", "lost", "closed", "win_rate", "won_value", "left_out", "left_out_note")


def cycle_time(history: History, by: str = "owner", start=None, end=None, bands=SIZE_BANDS) -> pl.DataFrame:
    """Days from creation to a win, per owner, industry, size band or lead source, for deals
    won between ``start`` and ``end``: ``deals``, ``avg_days``, ``median_days``, ``p80_days``.
    A deal's creation day is its creation's calendar day in the CRM's time zone."""
    closed = _closed(history, start, end).filter(pl.col("is_won").fill_null(False))
    closed = _segment(closed, by, bands)
    created = pl.col("created_at").dt.convert_time_zone(history.zone.key).dt.date()
    closed = closed.with_columns(days=(pl.col("actual_close_date") - created).dt.total_days().cast(pl.Float64))
    summary = closed.group_by(by).agg(
        deals=pl.len().cast(pl.Int64),
        avg_days=pl.col("days").mean(),
        median_days=pl.col("days").median(),
        p80_days=pl.col("days").quantile(0.8, interpolation="linear"),
    )
    return summary.sort(by, nulls_last=True)
