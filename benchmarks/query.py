"""Typical CRM questions as query specs, against the same questions written by hand.

    .venv/bin/python benchmarks/query.py --scale 10

For each question it prints, in one run:

- compile time of the spec (parse, check against the catalog, build the statement);
- execution on PostgreSQL through ``run_postgres`` and the hand-written SQL through the same
  kind of connection (ADBC, Arrow) and frame building, and their ratio (goal: within 1.2x);
- the same on DuckDB over a snapshot of the same data (goal: within 1.2x);
- the pandas route (``pandas.read_sql`` of the tables involved, then pandas) and DuckDB's
  speed-up over it (goal for aggregates: at least 10x).

Then, on a table of --rows rows (``bench_rows``, made with generate_series):

- ``crm.query`` of all of them from PostgreSQL against a bare ADBC read of the same SQL into
  an Arrow table (goal: within 1.5x);
- page 1 against page 10,000 (or the last whole page, with fewer rows) of --page-size rows,
  by keyset, on both engines, with the same page by OFFSET beside it (goal: deep pages by
  keyset within the same order of magnitude as page 1).

    .venv/bin/python benchmarks/query.py --scale 0.2 --rows 20000 --repeat 3   # a quick check

Times are the best of --repeat runs. Without --url (CRM_DATABASE_URL is ignored) it starts a
throwaway PostgreSQL cluster, loads demo data at --scale and takes a snapshot.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from pathlib import Path

import pandas as pd
import sqlalchemy as sa
from harness import best, database

from crm_kernel import CRM, snapshot
from crm_kernel import demo as demo_data
from crm_kernel.db import arrow, connect_engine
from crm_kernel.query import ENGINES, compile_spec, frames, parse, run_duckdb, run_postgres

TODAY = dt.date(2026, 1, 15)
NOW = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)

QUESTIONS = {
    "pipeline by stage and month": (
        {
            "entity": "deals",
            "group_by": ["stage.name", {"field": "expected_close_date", "trunc": "month"}],
            "aggregates": [{"fn": "count", "as": "deals"}, {"fn": "sum", "field": "value", "as": "total"}],
        },
        """SELECT s.name AS "stage.name", CAST(date_trunc('month', CAST(d.expected_close_date AS timestamp)) AS date)
                  AS expected_close_date_month, count(*) AS deals, sum(d.value) AS total
           FROM deals d LEFT JOIN pipeline_stages s ON s.id = d.stage_id
           WHERE d.deleted_at IS NULL GROUP BY 1, 2""",
        ("deals", "pipeline_stages"),
        lambda t: (
            t["deals"][t["deals"].deleted_at.isna()]
            .merge(t["pipeline_stages"], left_on="stage_id", right_on="id", suffixes=("", "_stage"))
            .assign(month=lambda d: pd.to_datetime(d.expected_close_date).dt.to_period("M"))
            .groupby(["name", "month"], dropna=False)
            .agg(deals=("id", "size"), total=("value", "sum"))
        ),
    ),
    "stale accounts (no activity in 30 days)": (
        {
            "entity": "companies",
            "select": ["name"],
            "where": {
                "rules": [
                    {
                        "related": "activities",
                        "quantifier": "none",
                        "where": {
                            "rules": [
                                {"field": "created_at", "operator": "inLast", "value": {"amount": 30, "unit": "day"}}
                            ]
                        },
                    }
                ]
            },
        },
        """SELECT c.name FROM companies c WHERE c.deleted_at IS NULL AND NOT EXISTS (
             SELECT 1 FROM activities a WHERE a.company_id = c.id AND a.deleted_at IS NULL
             AND a.created_at >= TIMESTAMPTZ '2025-12-16 12:00:00+00'
             AND a.created_at < TIMESTAMPTZ '2026-01-15 12:00:00+00')""",
        ("companies", "activities"),
        lambda t: t["companies"][
            t["companies"].deleted_at.isna()
            & ~t["companies"].id.isin(
                t["activities"][
                    t["activities"].deleted_at.isna()
                    & (t["activities"].created_at >= pd.Timestamp("2025-12-16 12:00", tz="UTC"))
                    & (t["activities"].created_at < pd.Timestamp("2026-01-15 12:00", tz="UTC"))
                ].company_id
            )
        ][["name"]],
    ),
    "top owners by won value": (
        {
            "entity": "deals",
            "where": {"rules": [{"field": "stage.is_closed_won", "operator": "=", "value": True}]},
            "group_by": ["owner.email"],
            "aggregates": [{"fn": "sum", "field": "value", "as": "won"}],
            "order_by": [{"field": "won", "dir": "desc"}],
            "limit": 10,
        },
        """SELECT u.email AS "owner.email", sum(d.value) AS won FROM deals d
           LEFT JOIN pipeline_stages s ON s.id = d.stage_id LEFT JOIN users u ON u.id = d.owner_id
           WHERE d.deleted_at IS NULL AND s.is_closed_won = true GROUP BY 1 ORDER BY won DESC NULLS LAST LIMIT 10""",
        ("deals", "pipeline_stages", "users"),
        lambda t: (
            t["deals"][t["deals"].deleted_at.isna()]
            .merge(t["pipeline_stages"], left_on="stage_id", right_on="id", suffixes=("", "_stage"))
            .query("is_closed_won")
            .merge(t["users"], left_on="owner_id", right_on="id", how="left", suffixes=("", "_user"))
            .groupby("email", dropna=False)["value"]
            .sum()
            .nlargest(10)
        ),
    ),
    "win rate by industry": (
        {
            "entity": "deals",
            "where": {
                "combinator": "or",
                "rules": [
                    {"field": "stage.is_closed_won", "operator": "=", "value": True},
                    {"field": "stage.is_closed_lost", "operator": "=", "value": True},
                ],
            },
            "group_by": ["company.industry"],
            "aggregates": [
                {"fn": "count", "as": "closed"},
                {"fn": "avg", "field": "stage.probability", "as": "win_rate"},
            ],
        },
        """SELECT c.industry AS "company.industry", count(*) AS closed,
                  CAST(avg(s.probability) AS double precision) AS win_rate
           FROM deals d LEFT JOIN companies c ON c.id = d.company_id LEFT JOIN pipeline_stages s ON s.id = d.stage_id
           WHERE d.deleted_at IS NULL AND (s.is_closed_won = true OR s.is_closed_lost = true) GROUP BY 1""",
        ("deals", "pipeline_stages", "companies"),
        lambda t: (
            t["deals"][t["deals"].deleted_at.isna()]
            .merge(t["pipeline_stages"], left_on="stage_id", right_on="id", suffixes=("", "_stage"))
            .query("is_closed_won or is_closed_lost")
            .merge(t["companies"], left_on="company_id", right_on="id", suffixes=("", "_company"))
            .assign(won=lambda d: d.is_closed_won.astype(float))
            .groupby("industry", dropna=False)
            .agg(closed=("won", "size"), win_rate=("won", "mean"))
        ),
    ),
}


def compile_seconds(engine: sa.Engine, spec: dict, rounds: int = 2000) -> float:
    with engine.connect() as conn:
        schema = ENGINES["postgres"].schema(conn, parse(spec))
    started = time.perf_counter()
    for _ in range(rounds):
        compile_spec(spec, schema=schema, now=NOW)
    return (time.perf_counter() - started) / rounds


def measure(engine: sa.Engine, snap, question, repeat: int) -> str:
    spec, hand_sql, tables, pandas_fn = question
    compiled = run_postgres(engine, spec, now=NOW).compiled

    def pg_hand():
        return frames.from_arrow(compiled.columns, arrow.plain(bare_adbc(engine, hand_sql)), "UTC")

    def duck_hand():
        return frames.from_arrow(compiled.columns, snap.con.sql(hand_sql).to_arrow_table(), "UTC")

    def pandas_route():
        return pandas_fn({t: pd.read_sql(f"SELECT * FROM {t}", engine) for t in tables})

    c = compile_seconds(engine, spec)
    pg = best(repeat, lambda: run_postgres(engine, spec, now=NOW).frame)  # the frame is built on first use
    pgh = best(repeat, pg_hand)
    dk = best(repeat, lambda: run_duckdb(snap.con, spec, now=NOW))
    dkh = best(repeat, duck_hand)
    pdr = best(max(1, repeat // 2), pandas_route)
    return (
        f"{c * 1e3:>7.3f}ms {pg * 1e3:>7.1f}ms {pgh * 1e3:>7.1f}ms {pg / pgh:>5.2f}x "
        f"{dk * 1e3:>7.1f}ms {dkh * 1e3:>7.1f}ms {dk / dkh:>5.2f}x {pdr * 1e3:>7.0f}ms {pdr / dk:>7.1f}x"
    )


def bare_adbc(engine: sa.Engine, sql: str, params: list | None = None):
    """``sql`` read into an Arrow table on a pooled ADBC connection, nothing else."""
    with arrow.session(engine, timezone="UTC") as cursor:
        cursor.execute(sql, params)
        return cursor.fetch_arrow_table()


BIG_TABLE = """
    CREATE TABLE bench_rows AS
    SELECT gen_random_uuid() AS id, md5(g::text) AS title, mod(g, 100000)::numeric(12, 2) AS value,
           DATE '2026-01-01' - mod(g, 3000) AS close_date,
           TIMESTAMPTZ '2026-01-15 12:00+00' - g * INTERVAL '1 second' AS created_at, mod(g, 7)::integer AS kind
    FROM generate_series(1, {rows}) g
"""
BIG_SPEC = {"entity": "bench_rows"}


def measure_big_read(engine: sa.Engine, repeat: int) -> None:
    crm = CRM(engine)
    result = crm.execute(BIG_SPEC)
    from crm_kernel.query.engines.postgres import adbc_statement

    sql, values = adbc_statement(result.compiled)
    spec = best(repeat, lambda: crm.query(BIG_SPEC))
    bare = best(repeat, lambda: bare_adbc(engine, sql, values or None))
    print(
        f"\ncrm.query of {result.row_count:,} rows from PostgreSQL: {spec * 1e3:.0f} ms; bare ADBC of the same "
        f"SQL: {bare * 1e3:.0f} ms; ratio {spec / bare:.2f}x (goal <= 1.5x)",
        flush=True,
    )


def measure_paging(engine: sa.Engine, snap, rows: int, page_size: int, repeat: int) -> None:
    """Page 1 and a deep page of ``bench_rows``, by keyset and by OFFSET, on both engines."""
    spec = {
        "entity": "bench_rows",
        "select": ["title", "value", "created_at"],
        "order_by": [{"field": "value", "dir": "desc"}],
    }
    page = min(10_000, max(2, rows // page_size))  # 1-based: the deep page
    print(f"\npaging {rows:,} rows by {page_size}, sorted by value (ties), page 1 against page {page:,}:")
    engines = {
        "postgres": lambda s: run_postgres(engine, s, now=NOW),
        "duckdb": lambda s: run_duckdb(snap.con, s, now=NOW),
    }
    for name, run in engines.items():
        first, deep, offset = _page_times(run, spec, page, page_size, repeat)
        print(
            f"  {name:<9} page 1 {first * 1e3:7.1f} ms   page {page:,} by keyset {deep * 1e3:7.1f} ms "
            f"({deep / first:.1f}x)   by OFFSET {offset * 1e3:7.1f} ms ({offset / first:.1f}x)",
            flush=True,
        )


def _page_times(run, spec: dict, page: int, page_size: int, repeat: int) -> tuple[float, float, float]:
    before = run({**spec, "limit": (page - 1) * page_size, "after": []})  # untimed: the row before the page
    first = best(repeat, lambda: run({**spec, "limit": page_size, "after": []}))
    deep = best(repeat, lambda: run({**spec, "limit": page_size, "after": before.after}))
    offset = best(repeat, lambda: run({**spec, "limit": page_size, "offset": (page - 1) * page_size}))
    return first, deep, offset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", help="run on this database (its data is used as it is)")
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows of the big read and of paging")
    parser.add_argument("--page-size", type=int, default=100)
    args = parser.parse_args()

    with database(args.url, "crm-bench-query-") as url, tempfile.TemporaryDirectory() as out:
        engine = connect_engine(url)
        if not args.url:
            print(f"loading demo data at scale {args.scale} ...", flush=True)
            demo_data.load(engine, scale=args.scale, seed=42, today=TODAY)
        with engine.begin() as conn:
            conn.exec_driver_sql("DROP TABLE IF EXISTS bench_rows")
            conn.exec_driver_sql(BIG_TABLE.format(rows=int(args.rows)))
            conn.exec_driver_sql("ANALYZE bench_rows")
        folder = snapshot.export(engine, Path(out))
        snap = snapshot.open(folder)
        print(
            f"{'question':<42} {'compile':>9} {'pg spec':>9} {'pg hand':>9} {'ratio':>6} "
            f"{'duck spec':>9} {'duck hand':>9} {'ratio':>6} {'pandas':>9} {'duck/pd':>8}"
        )
        for name, question in QUESTIONS.items():
            print(f"{name:<42} " + measure(engine, snap, question, args.repeat), flush=True)
        measure_big_read(engine, args.repeat)
        measure_paging(engine, snap, args.rows, args.page_size, args.repeat)
        snap.close()
        engine.dispose()


if __name__ == "__main__":
    main()
