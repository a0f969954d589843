"""crm.analytics on DuckDB over a snapshot and on PostgreSQL, against the same computation in
pandas over ``read_sql``, in one run.

    .venv/bin/python benchmarks/analytics.py --scale 100
    .venv/bin/python benchmarks/analytics.py --url postgresql://...   # an existing CRM: only read

Without --url it starts a throwaway PostgreSQL cluster (never CRM_DATABASE_URL), loads demo
data at --scale (whose deals come with their history) and, for any deal without a history of
its own (data loaded by other means), writes one into the audit log: every deal walks the open
stages to where it is now, a week or more apart, some with their value edited and their close
date pushed on the way. Then it exports a snapshot and
times (best of --repeat) each analytic on both engines and, for those with a pandas baseline,
pandas reading the same rows with ``pandas.read_sql`` and computing the same answer, which it
checks against the library's. Ratios are pandas time / engine time (goal: >= 10x on DuckDB).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
from collections.abc import Callable

import pandas as pd
import polars as pl
import sqlalchemy as sa
from harness import best, database

from crm_kernel import CRM, snapshot
from crm_kernel.db import connect_engine
from crm_kernel.demo import load as load_demo

# A past for every deal that has none: create in the first stage, move through the open stages
# to the deal's current one (won and lost deals through some of them first), 7-20 days apart,
# the last write being the deal as it is now. Every third deal had 80% of its value before its
# second write; every fourth had its close date pushed by 30 days at it.
SYNTHETIC_HISTORY = """
WITH s AS (SELECT id, position, probability, is_closed_won OR is_closed_lost AS closed
           FROM pipeline_stages WHERE deleted_at IS NULL AND is_active),
open_s AS (SELECT id, probability, row_number() OVER (ORDER BY position) AS step FROM s WHERE NOT closed),
d AS (
    SELECT d.id, d.created_at, d.value, d.expected_close_date, d.actual_close_date,
        to_jsonb(d) - 'search_vector' - 'last_xact' AS img, s.closed,
        CASE WHEN s.closed THEN 1 + abs(hashtext(d.id::text)) % (SELECT count(*) FROM open_s)
             ELSE (SELECT count(*) FROM open_s o JOIN s x ON x.id = o.id WHERE x.position <= s.position) END AS n_open
    FROM deals d JOIN s ON s.id = d.stage_id
    WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.entity = 'deals' AND a.entity_id = d.id)
),
steps AS (
    SELECT d.id, g.i, d.n_open + d.closed::int AS n, d.img, d.closed, d.created_at, d.value,
        d.expected_close_date, o.id AS stage_id, o.probability
    FROM d CROSS JOIN LATERAL generate_series(1, d.n_open + d.closed::int) AS g(i)
    LEFT JOIN open_s o ON o.step = g.i AND g.i <= d.n_open
),
images AS (
    SELECT id, i, n, created_at + (i - 1) * interval '1 day' * (7 + abs(hashtext(id::text || i)) % 14) AS at,
        CASE WHEN i = n THEN img ELSE img || jsonb_build_object(
            'stage_id', stage_id, 'probability', probability, 'actual_close_date', NULL,
            'value', CASE WHEN i = 1 AND abs(hashtext(id::text)) % 3 = 0 THEN round(value * 0.8, 2) ELSE value END,
            'expected_close_date', CASE WHEN i = 1 AND abs(hashtext(id::text)) % 4 = 0
                                        THEN expected_close_date - 30 ELSE expected_close_date END)
        END AS after
    FROM steps
)
INSERT INTO audit_log (user_id, at, entity, entity_id, operation, before, after)
SELECT '00000000-0000-0000-0000-000000000001', at, 'deals', id, CASE WHEN i = 1 THEN 'create' ELSE 'move' END,
    lag(after) OVER (PARTITION BY id ORDER BY i), after
FROM images
"""


def load(engine: sa.Engine, scale: float) -> None:
    load_demo(engine, scale=scale, seed=42, today=dt.date(2026, 6, 30), replace=True)
    with engine.begin() as conn:
        written = conn.execute(sa.text(SYNTHETIC_HISTORY)).rowcount
    print(f"wrote {written:,} audit rows of synthetic deal history", flush=True)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql("VACUUM ANALYZE")


# -- pandas baselines: the same answers from read_sql --------------------------------------------


def _read(engine: sa.Engine, sql: str, **params) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.read_sql(sa.text(sql), conn, params=params)


def _rates(engine: sa.Engine) -> pd.DataFrame:
    rates = _read(engine, "SELECT currency, rate_date, rate FROM exchange_rates")
    rates["rate_date"] = pd.to_datetime(rates["rate_date"])
    rates["rate"] = rates["rate"].astype(float)
    return rates.sort_values("rate_date")


def _convert(frame: pd.DataFrame, rates: pd.DataFrame, day) -> pd.Series:
    """Cents at the nearest earlier rate of ``day`` (a column name, or one day for all)."""
    keyed = frame.assign(
        _day=pd.to_datetime(frame[day]) if isinstance(day, str) else pd.Timestamp(day), _row=range(len(frame))
    )
    keyed["_day"] = keyed["_day"].fillna(pd.Timestamp("2262-01-01"))
    joined = pd.merge_asof(
        keyed.sort_values("_day"), rates, left_on="_day", right_on="rate_date", by="currency", direction="backward"
    ).sort_values("_row")
    return (joined["value"].astype(float).fillna(0) * joined["rate"] * 100 + 0.5).apply(
        lambda c: None if pd.isna(c) else int(c)
    )


PANDAS_STAGES = (
    "SELECT id::text AS stage_id, name AS stage, position, probability AS stage_probability,"
    " is_closed_won, is_closed_lost FROM pipeline_stages"
)


def pandas_pipeline_as_of(engine: sa.Engine, moment: dt.datetime) -> pd.DataFrame:
    audit = _read(
        engine,
        """
        SELECT id, at, entity_id::text AS deal_id, after->>'stage_id' AS stage_id,
            (after->>'value')::numeric AS value, after->>'currency' AS currency,
            (after->>'probability')::numeric AS probability, after->>'deleted_at' AS deleted_at,
            before->>'stage_id' AS before_stage, operation
        FROM audit_log WHERE entity = 'deals' AND at <= :upto""",
        upto=moment,
    )
    audit = audit.sort_values(["deal_id", "at", "id"])
    audit["enters"] = (audit["operation"] == "create") | (audit["before_stage"] != audit["stage_id"])
    audit["entered_at"] = audit["at"].where(audit["enters"])
    entered = audit.groupby("deal_id")["entered_at"].max()
    latest = audit.groupby("deal_id").tail(1).set_index("deal_id")
    latest = latest[latest["deleted_at"].isna()].join(entered.rename("entered"))
    stages = _read(engine, PANDAS_STAGES)
    deals = latest.reset_index().merge(stages, on="stage_id")
    deals = deals[~deals["is_closed_won"] & ~deals["is_closed_lost"]].copy()
    deals["cents"] = _convert(deals, _rates(engine), moment.date()).values
    probability = deals["probability"].fillna(deals["stage_probability"]).astype(float)
    deals["weighted"] = (deals["cents"].astype(float) * probability + 0.5).apply(
        lambda c: None if pd.isna(c) else int(c)
    )
    deals["days"] = (pd.Timestamp(moment) - deals["entered"]).dt.total_seconds() / 86400
    return deals.groupby("stage").agg(
        deals=("deal_id", "size"), value=("cents", "sum"), weighted=("weighted", "sum"), avg_days=("days", "mean")
    )


def pandas_velocity(engine: sa.Engine) -> pd.DataFrame:
    audit = _read(
        engine,
        """
        SELECT id, at, entity_id::text AS deal_id, after->>'stage_id' AS stage_id,
            before->>'stage_id' AS before_stage, operation
        FROM audit_log WHERE entity = 'deals'""",
    )
    entries = audit[(audit["operation"] == "create") | (audit["before_stage"] != audit["stage_id"])]
    entries = entries.sort_values(["deal_id", "at"])
    entries["left_at"] = entries.groupby("deal_id")["at"].shift(-1)
    stages = _read(engine, PANDAS_STAGES)
    stays = entries.dropna(subset=["left_at"]).merge(stages, on="stage_id")
    stays = stays[~stays["is_closed_won"] & ~stays["is_closed_lost"]].copy()
    stays["days"] = (stays["left_at"] - stays["at"]).dt.total_seconds() / 86400
    return stays.groupby("stage")["days"].agg(["size", "median", lambda s: s.quantile(0.8)])


def pandas_win_rate(engine: sa.Engine) -> pd.DataFrame:
    deals = _read(
        engine,
        """
        SELECT d.owner_id::text AS owner_id, s.is_closed_won AS won, d.value, d.currency, d.actual_close_date
        FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id
        WHERE d.deleted_at IS NULL AND (s.is_closed_won OR s.is_closed_lost)""",
    )
    users = _read(engine, "SELECT id::text AS owner_id, full_name AS owner FROM users")
    deals["cents"] = _convert(deals, _rates(engine), "actual_close_date").values
    deals = deals.merge(users, on="owner_id", how="left")
    out = deals.groupby("owner").agg(won=("won", "sum"), closed=("won", "size"))
    out["win_rate"] = out["won"] / out["closed"]
    return out


def pandas_forecast(engine: sa.Engine) -> pd.DataFrame:
    deals = _read(
        engine,
        """
        SELECT d.value, d.currency, d.expected_close_date, s.probability, s.is_closed_won, s.is_closed_lost
        FROM deals d JOIN pipeline_stages s ON s.id = d.stage_id WHERE d.deleted_at IS NULL""",
    )
    deals = deals[~deals["is_closed_won"] & ~deals["is_closed_lost"]].copy()
    deals["cents"] = _convert(deals.assign(_none=None), _rates(engine), "_none").values
    deals["weighted"] = (deals["cents"].astype(float) * deals["probability"].astype(float) + 0.5).apply(
        lambda c: None if pd.isna(c) else int(c)
    )
    deals["period"] = pd.to_datetime(deals["expected_close_date"]).dt.to_period("Q")
    return deals.groupby("period", dropna=False).agg(deals=("cents", "size"), forecast=("weighted", "sum"))


# -- the run ---------------------------------------------------------------------------------------


def check_pipeline(ours: pl.DataFrame, theirs: pd.DataFrame) -> None:
    """pandas and the library agree on deals and converted value per stage."""
    for row in ours.filter(pl.col("deals") > 0).iter_rows(named=True):
        other = theirs.loc[row["stage"]]
        assert int(other["deals"]) == row["deals"], (row, other)
        assert round(float(other["value"]) / 100, 2) == row["value"], (row, other)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10, help="demo data scale (1 = 2,000 deals)")
    parser.add_argument("--url", help="benchmark this database as it is instead of a throwaway one")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    args = parser.parse_args()
    if not args.url:
        os.environ.pop("CRM_DATABASE_URL", None)  # a throwaway cluster, never a real CRM

    with database(args.url, "crm-bench-analytics-") as url, tempfile.TemporaryDirectory() as scratch:
        engine = connect_engine(url)
        if not args.url:
            print(f"loading demo data at scale {args.scale} ...", flush=True)
            load(engine, args.scale)
        crm = CRM(engine)
        with engine.connect() as conn:
            first, last, rows = conn.execute(
                sa.text("SELECT min(at), max(at), count(*) FROM audit_log WHERE entity = 'deals'")
            ).one()
        as_of = last - (last - first) / 3
        print(f"{rows:,} deal audit rows from {first:%Y-%m-%d} to {last:%Y-%m-%d}; as_of {as_of:%Y-%m-%d}")
        folder = crm.snapshot(out=scratch)
        start, end = (as_of - dt.timedelta(days=90)).date(), as_of.date()
        now = last + dt.timedelta(days=1)
        opened = snapshot.open(folder)
        engines = {"duckdb": crm.analytics("duckdb", snapshot=opened, now=now), "postgres": crm.analytics(now=now)}

        analytics: list[tuple[str, Callable, Callable | None]] = [
            ("pipeline(as_of=...)", lambda a: a.pipeline(as_of=as_of), lambda: pandas_pipeline_as_of(engine, as_of)),
            ("pipeline()", lambda a: a.pipeline(), None),
            ("waterfall(start, end)", lambda a: a.waterfall(start, end), None),
            ("funnel(start, end)", lambda a: a.funnel(start, end), None),
            ("velocity()", lambda a: a.velocity(), lambda: pandas_velocity(engine)),
            ("slippage()", lambda a: a.slippage(), None),
            ("win_rate(by='owner')", lambda a: a.win_rate(), lambda: pandas_win_rate(engine)),
            ("cycle_time(by='owner')", lambda a: a.cycle_time(), None),
            ("forecast()", lambda a: a.forecast(), lambda: pandas_forecast(engine)),
            ("forecast(method='learned')", lambda a: a.forecast(method="learned"), None),
            ("backtest(periods=4)", lambda a: a.backtest(periods=4), None),
        ]
        check_pipeline(engines["duckdb"].pipeline(as_of=as_of), pandas_pipeline_as_of(engine, as_of))
        assert engines["duckdb"].pipeline(as_of=as_of).equals(engines["postgres"].pipeline(as_of=as_of))

        print(f"\nbest of {args.repeat}; ratio = pandas / engine\n")
        print(f"{'analytic':<28} {'duckdb':>9} {'postgres':>9} {'pandas':>9} {'pandas/duckdb':>14} {'pandas/pg':>10}")
        for label, run, baseline in analytics:
            times = {name: best(args.repeat, lambda a=a, run=run: run(a)) for name, a in engines.items()}
            line = f"{label:<28} {times['duckdb']:8.3f}s {times['postgres']:8.3f}s"
            if baseline is not None:
                pandas = best(args.repeat, baseline)
                line += f" {pandas:8.3f}s {pandas / times['duckdb']:13.1f}x {pandas / times['postgres']:9.1f}x"
            print(line, flush=True)
        opened.close()
        engine.dispose()
    print("\ngoal: at least 10x pandas on DuckDB")


if __name__ == "__main__":
    main()
