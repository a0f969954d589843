"""Demo data loading: COPY against row-by-row INSERT, over the same rows, in one run.

    .venv/bin/python benchmarks/load.py --scale 10
    .venv/bin/python benchmarks/load.py --url postgresql://... --replace   # replaces that CRM's data

Measures:

- ``demo_data.load`` end to end (generation, COPY, index and foreign-key rebuild, ANALYZE);
- a sample of the same generated rows (the first companies and all their contacts, every
  generated column) inserted one row per ``conn.execute(insert(table), row)`` through
  SQLAlchemy Core, in one transaction, into emptied tables;
- the same sample through ``load``'s COPY path (``copy_in``: foreign keys and secondary
  indexes set aside, then rebuilt and checked), and through a plain COPY per table into the
  tables as they are (every index and foreign key updated per row, as for the INSERTs).

Sample timings are the best of --repeat runs; each run rolls back, so the database keeps the
loaded demo data. Without --url it uses a throwaway PostgreSQL cluster that it starts and
destroys (never CRM_DATABASE_URL). A database that already holds CRM data is only replaced with
--replace.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
import uuid
from collections.abc import Callable

import polars as pl
import sqlalchemy as sa
from harness import database

from crm_kernel import CrmError
from crm_kernel import demo as demo_data
from crm_kernel.db import connect_engine
from crm_kernel.model import entity, table

SEED, TODAY = 42, dt.date(2026, 1, 15)


def sample(frames: dict[str, pl.DataFrame], rows: int) -> dict[str, pl.DataFrame]:
    """About ``rows`` rows: the first companies and every contact of theirs (about five each)."""
    companies = frames["companies"].head(max(1, rows // 6))
    contacts = frames["contacts"].filter(pl.col("company_id").is_in(companies["id"].implode()))
    return {"companies": companies, "contacts": contacts}


def python_rows(name: str, frame: pl.DataFrame) -> list[dict]:
    """The frame's rows as the Python values SQLAlchemy binds: uuids and parsed JSON."""
    fields = {f.name: f.type for f in entity(name).fields}
    convert = {"uuid": uuid.UUID, "json": json.loads}
    rows = frame.to_dicts()
    for column in frame.columns:
        if fields[column] in convert:
            to_python = convert[fields[column]]
            for row in rows:
                if row[column] is not None:
                    row[column] = to_python(row[column])
    return rows


def emptied(conn: sa.Connection) -> None:
    conn.exec_driver_sql("TRUNCATE activities, deals, contacts, companies")


def time_inserts(engine: sa.Engine, rows: dict[str, list[dict]]) -> float:
    with engine.connect() as conn, conn.begin() as transaction:
        emptied(conn)
        started = time.perf_counter()
        for name, table_rows in rows.items():
            statement = sa.insert(table(name))
            for row in table_rows:
                conn.execute(statement, row)
        elapsed = time.perf_counter() - started
        transaction.rollback()
    return elapsed


def time_copy(engine: sa.Engine, frames: dict[str, pl.DataFrame], set_aside: bool) -> float:
    with engine.connect() as conn, conn.begin() as transaction:
        emptied(conn)
        cursor = conn.connection.driver_connection.cursor()
        started = time.perf_counter()
        if set_aside:
            demo_data.copy_in(cursor, frames)
        else:
            for name, frame in frames.items():
                demo_data.copy_frame(cursor, name, frame)
        elapsed = time.perf_counter() - started
        transaction.rollback()
    return elapsed


def fastest(repeat: int, run: Callable[[], float]) -> float:
    """The fastest of ``repeat`` runs that time themselves (setup and rollback excluded)."""
    return min(run() for _ in range(repeat))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10, help="demo data scale (1 = 42,740 rows)")
    parser.add_argument("--url", help="database URL [default: a throwaway cluster]")
    parser.add_argument("--sample", type=int, default=3_000, help="rows for the INSERT comparison (about)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per sample timing; the best counts")
    parser.add_argument("--replace", action="store_true", help="replace the CRM data of a database that has some")
    args = parser.parse_args()

    with database(args.url, "crm-bench-load-") as url:
        engine = connect_engine(url)
        try:
            started = time.perf_counter()
            try:
                counts = demo_data.load(engine, scale=args.scale, seed=SEED, today=TODAY, replace=args.replace)
            except CrmError as exc:
                sys.exit(f"error: {exc}")
            load_time = time.perf_counter() - started
            with engine.connect() as conn:
                stages = demo_data.read_stages(conn)
            frames = sample(demo_data.generate(stages, scale=args.scale, seed=SEED, today=TODAY), args.sample)
            rows = {name: python_rows(name, frame) for name, frame in frames.items()}
            insert_time = fastest(args.repeat, lambda: time_inserts(engine, rows))
            copy_time = fastest(args.repeat, lambda: time_copy(engine, frames, set_aside=True))
            plain_copy_time = fastest(args.repeat, lambda: time_copy(engine, frames, set_aside=False))
        finally:
            engine.dispose()

    loaded = sum(counts.values())
    sampled = sum(f.height for f in frames.values())
    load_rate = loaded / load_time
    insert_rate, copy_rate, plain_rate = (sampled / t for t in (insert_time, copy_time, plain_copy_time))
    what = ", ".join(f"{f.height:,} {name}" for name, f in frames.items())
    print(
        f"load() at scale {args.scale:g}: {loaded:,} rows in {load_time:.1f} s = {load_rate:,.0f} rows/s"
        " (generation, COPY, indexes and foreign keys, ANALYZE)"
    )
    print(f"sample of the same rows ({what}):")
    print(f"  INSERT, one row per execute:      {insert_time:6.2f} s = {insert_rate:8,.0f} rows/s")
    print(f"  COPY as load() does (copy_in):    {copy_time:6.2f} s = {copy_rate:8,.0f} rows/s")
    print(f"  COPY into the tables as they are: {plain_copy_time:6.2f} s = {plain_rate:8,.0f} rows/s")
    print(
        f"COPY/INSERT on the same rows: {copy_rate / insert_rate:.1f}x as load() copies, "
        f"{plain_rate / insert_rate:.1f}x plain; load() end to end vs INSERT: {load_rate / insert_rate:.1f}x"
    )


if __name__ == "__main__":
    main()
