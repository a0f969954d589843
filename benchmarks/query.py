"""Typical CRM questions as query specs, against the same questions written by hand.

    .venv/bin/python benchmarks/query.py --scale 10

For each question it prints, in one run:

- compile time of the spec (parse, check against the catalog, build the statement);
- execution on PostgreSQL through ``run_postgres`` and the hand-written SQL through the same
  connection and frame building, and their ratio (goal: within 1.2x);
- the same on DuckDB over a snapshot of the same data (goal: within 1.2x);
- the pandas route (``pandas.read_sql`` of the tables involved, then pandas) and DuckDB's
  speed-up over it (goal for aggregates: at least 10x).

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

from crm_kernel import demo as demo_data
from crm_kernel import snapshot
from crm_kernel.db import connect_engine
from crm_kernel.query import frames, run_duckdb, run_postgres
from crm_kernel.query.run import compile_spec, parse, postgres_schema

TODAY = dt.date(2026, 1, 15)
NOW = dt.datetime(2026, 1, 15, 12, tzinfo=dt.UTC)

QUESTIONS = {
    "pipeline by stage and month": (
        {"entity": "deals", "group_by": ["stage.name", {"field": "expected_close_date", "trunc": "month"}],
         "aggregates": [{"fn": "count", "as": "deals"}, {"fn": "sum", "field": "value", "as": "total"}]},
        """SELECT s.name AS "stage.name", CAST(date_trunc('month', CAST(d.expected_close_date AS timestamp)) AS date)
                  AS expected_close_date_month, count(*) AS deals, sum(d.value) AS total
           FROM deals d LEFT JOIN pipeline_stages s ON s.id = d.stage_id
           WHERE d.deleted_at IS NULL GROUP BY 1, 2""",
        ("deals", "pipeline_stages"),
        lambda t: (t["deals"][t["deals"].deleted_at.isna()]
                   .merge(t["pipeline_stages"], left_on="stage_id", right_on="id", suffixes=("", "_stage"))
                   .assign(month=lambda d: pd.to_datetime(d.expected_close_date).dt.to_period("M"))
                   .groupby(["name", "month"], dropna=False).agg(deals=("id", "size"), total=("value", "sum"))),
    ),
    "stale accounts (no activity in 30 days)": (
        {"entity": "companies", "select": ["name"], "where": {"rules": [
            {"related": "activities", "quantifier": "none",
             "where": {"rules": [{"field": "created_at", "operator": "inLast", "value": {"amount": 30, "unit": "day"}}]}}]}},
        """SELECT c.name FROM companies c WHERE c.deleted_at IS NULL AND NOT EXISTS (
             SELECT 1 FROM activities a WHERE a.company_id = c.id AND a.deleted_at IS NULL
             AND a.created_at >= TIMESTAMPTZ '2025-12-16 12:00:00+00' AND a.created_at < TIMESTAMPTZ '2026-01-15 12:00:00+00')""",
        ("companies", "activities"),
        lambda t: t["companies"][t["companies"].deleted_at.isna() & ~t["companies"].id.isin(
            t["activities"][t["activities"].deleted_at.isna()
                            & (t["activities"].created_at >= pd.Timestamp("2025-12-16 12:00", tz="UTC"))
                            & (t["activities"].created_at < pd.Timestamp("2026-01-15 12:00", tz="UTC"))].company_id)][["name"]],
    ),
    "top owners by won value": (
        {"entity": "deals", "where": {"rules": [{"field": "stage.is_closed_won", "operator": "=", "value": True}]},
         "group_by": ["owner.email"], "aggregates": [{"fn": "sum", "field": "value", "as": "won"}],
         "order_by": [{"field": "won", "dir": "desc"}], "limit": 10},
        """SELECT u.email AS "owner.email", sum(d.value) AS won FROM deals d
           LEFT JOIN pipeline_stages s ON s.id = d.stage_id LEFT JOIN users u ON u.id = d.owner_id
           WHERE d.deleted_at IS NULL AND s.is_closed_won = true GROUP BY 1 ORDER BY won DESC NULLS LAST LIMIT 10""",
        ("deals", "pipeline_stages", "users"),
        lambda t: (t["deals"][t["deals"].deleted_at.isna()]
                   .merge(t["pipeline_stages"], left_on="stage_id", right_on="id", suffixes=("", "_stage"))
                   .query("is_closed_won")
                   .merge(t["users"], left_on="owner_id", right_on="id", how="left", suffixes=("", "_user"))
                   .groupby("email", dropna=False)["value"].sum().nlargest(10)),
    ),
    "win rate by industry": (
        {"entity": "deals", "where": {"combinator": "or", "rules": [
            {"field": "stage.is_closed_won", "operator": "=", "value": True},
            {"field": "stage.is_closed_lost", "operator": "=", "value": True}]},
         "group_by": ["company.industry"],
         "aggregates": [{"fn": "count", "as": "closed"}, {"fn": "avg", "field": "stage.probability", "as": "win_rate"}]},
        """SELECT c.industry AS "company.industry", count(*) AS closed, CAST(avg(s.probability) AS double precision) AS win_rate
           FROM deals d LEFT JOIN companies c ON c.id = d.company_id LEFT JOIN pipeline_stages s ON s.id = d.stage_id
           WHERE d.deleted_at IS NULL AND (s.is_closed_won = true OR s.is_closed_lost = true) GROUP BY 1""",
        ("deals", "pipeline_stages", "companies"),
        lambda t: (t["deals"][t["deals"].deleted_at.isna()]
                   .merge(t["pipeline_stages"], left_on="stage_id", right_on="id", suffixes=("", "_stage"))
                   .query("is_closed_won or is_closed_lost")
                   .merge(t["companies"], left_on="company_id", right_on="id", suffixes=("", "_company"))
                   .assign(won=lambda d: d.is_closed_won.astype(float))
                   .groupby("industry", dropna=False).agg(closed=("won", "size"), win_rate=("won", "mean"))),
    ),
}


def compile_seconds(engine: sa.Engine, spec: dict, rounds: int = 2000) -> float:
    with engine.connect() as conn:
        schema = postgres_schema(conn, parse(spec))
    started = time.perf_counter()
    for _ in range(rounds):
        compile_spec(spec, schema=schema, now=NOW)
    return (time.perf_counter() - started) / rounds


def measure(engine: sa.Engine, snap, question, repeat: int) -> str:
    spec, hand_sql, tables, pandas_fn = question
    compiled = run_postgres(engine, spec, now=NOW).compiled

    def pg_hand():
        with engine.connect() as conn:
            return frames.from_rows(compiled.columns, conn.execute(sa.text(hand_sql)).all(), "UTC")

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
    return (f"{c * 1e3:>7.3f}ms {pg * 1e3:>7.1f}ms {pgh * 1e3:>7.1f}ms {pg / pgh:>5.2f}x "
            f"{dk * 1e3:>7.1f}ms {dkh * 1e3:>7.1f}ms {dk / dkh:>5.2f}x {pdr * 1e3:>7.0f}ms {pdr / dk:>7.1f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", help="run on this database (its data is used as it is)")
    args = parser.parse_args()

    with database(args.url, "crm-bench-query-") as url, tempfile.TemporaryDirectory() as out:
        engine = connect_engine(url)
        if not args.url:
            print(f"loading demo data at scale {args.scale} ...", flush=True)
            demo_data.load(engine, scale=args.scale, seed=42, today=TODAY)
        folder = snapshot.export(engine, Path(out))
        snap = snapshot.open(folder)
        print(f"{'question':<42} {'compile':>9} {'pg spec':>9} {'pg hand':>9} {'ratio':>6} "
              f"{'duck spec':>9} {'duck hand':>9} {'ratio':>6} {'pandas':>9} {'duck/pd':>8}")
        for name, question in QUESTIONS.items():
            print(f"{name:<42} " + measure(engine, snap, question, args.repeat), flush=True)
        snap.close()
        engine.dispose()


if __name__ == "__main__":
    main()
