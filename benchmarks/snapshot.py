"""Snapshot export speed against its baselines, over the same tables, in one run.

    .venv/bin/python benchmarks/snapshot.py --scale 10
    .venv/bin/python benchmarks/snapshot.py --url postgresql://...   # an existing CRM: nothing loaded

Times (best of --repeat runs) for:

- ``crm_kernel.snapshot.export`` (ADBC, parallel connections, zstd Parquet), and an incremental
  export after 1% of the deals moved (not with --url: that database is only read);
- ``pandas.read_sql`` + ``DataFrame.to_parquet``, table by table (uuid and jsonb cast to text,
  which pandas cannot write otherwise);
- psycopg ``COPY ... TO STDOUT (FORMAT csv)`` parsed by pyarrow and written to Parquet, without
  the type conversions a real snapshot needs (the COPY route's lower bound);
- a bare ``COPY ... TO STDOUT`` into /dev/null, binary and text: the floor.

Without --url it starts a throwaway PostgreSQL cluster and loads demo data at --scale
(CRM_DATABASE_URL is ignored: the benchmark replaces the data of the database it loads).
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import sqlalchemy as sa
from harness import best, database

from crm_kernel import demo as demo_data
from crm_kernel.db import connect_engine
from crm_kernel.db.engine import libpq_url
from crm_kernel.snapshot import exporter
from crm_kernel.snapshot.schema import ExportTable, read_tables
from crm_kernel.snapshot.typemap import quote


def export(engine: sa.Engine, folder: Path, incremental: bool = False) -> None:
    exporter.export(engine, folder, incremental=incremental)


def move_some_deals(engine: sa.Engine, share: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "UPDATE deals SET stage_id = (SELECT id FROM pipeline_stages ORDER BY position LIMIT 1),"
                " version = version + 1, updated_at = now() WHERE random() < :share"
            ),
            {"share": share},
        )


def pandas_text_query(table: ExportTable) -> str:
    """The export query with uuid and jsonb as text: pandas holds them as Python objects
    that ``to_parquet`` cannot write."""
    columns = [
        f"{quote(c.name)}::text AS {quote(c.name)}" if c.duckdb_type in ("UUID", "JSON") else c.expression
        for c in table.columns
    ]
    return f"SELECT {', '.join(columns)} FROM {quote(table.name)}"


def pandas_route(engine: sa.Engine, tables: list[ExportTable], folder: Path) -> None:
    with engine.connect() as conn:
        for table in tables:
            frame = pd.read_sql(sa.text(pandas_text_query(table)), conn)
            frame.to_parquet(folder / table.file, compression="zstd", index=False)


def copy_csv_route(url: str, tables: list[ExportTable], folder: Path) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cursor:
        for table in tables:
            buffer = io.BytesIO()
            with cursor.copy(f"COPY ({table.select()}) TO STDOUT (FORMAT csv)") as copy:
                for data in copy:
                    buffer.write(data)
            if not buffer.tell():
                continue  # an empty table: nothing for the CSV reader to parse
            arrow = pacsv.read_csv(
                pa.py_buffer(buffer.getbuffer()),
                read_options=pacsv.ReadOptions(column_names=[c.name for c in table.columns]),
                parse_options=pacsv.ParseOptions(newlines_in_values=True),
            )
            pq.write_table(arrow, folder / table.file, compression="zstd")


def copy_floor(url: str, tables: list[ExportTable], fmt: str) -> None:
    with psycopg.connect(url) as conn, conn.cursor() as cursor, open("/dev/null", "wb") as null:
        for table in tables:
            with cursor.copy(f"COPY ({table.select()}) TO STDOUT (FORMAT {fmt})") as copy:
                for data in copy:
                    null.write(data)


def fresh(folder: Path) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scale", type=float, default=10, help="demo data scale (1 = 28,000 rows)")
    parser.add_argument("--url", help="benchmark this database as it is instead of a throwaway one")
    parser.add_argument("--repeat", type=int, default=3, help="runs per measurement; the best counts")
    parser.add_argument("--workers", type=int, default=exporter.WORKERS, help="parallel export connections")
    parser.add_argument("--skip-pandas", action="store_true", help="leave out the (slow) pandas baseline")
    args = parser.parse_args()
    exporter.WORKERS = args.workers

    with database(args.url, "crm-bench-snapshot-") as url, tempfile.TemporaryDirectory() as scratch:
        engine = connect_engine(url)
        if not args.url:
            print(f"loading demo data at scale {args.scale} ...", flush=True)
            demo_data.load(engine, scale=args.scale, seed=42, today=dt.date(2025, 6, 30), replace=True)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")  # a settled database: hint bits set, statistics fresh
        with engine.connect() as conn:
            tables = read_tables(conn)
        rows = sum(t.estimated_rows for t in tables)
        print(f"{len(tables)} tables, about {rows:,} rows; best of {args.repeat}\n")

        url = libpq_url(url)
        out = Path(scratch) / "out"
        results = {}
        results["export"] = best(args.repeat, lambda: export(engine, fresh(out)))
        if not args.url:  # a database given by --url is only read
            export(engine, fresh(out))
            move_some_deals(engine, 0.01)
            results["incremental"] = best(1, lambda: export(engine, out, incremental=True))
        if not args.skip_pandas:
            results["pandas"] = best(args.repeat, lambda: pandas_route(engine, tables, fresh(out)))
        results["copy_csv"] = best(args.repeat, lambda: copy_csv_route(url, tables, fresh(out)))
        results["floor_binary"] = best(args.repeat, lambda: copy_floor(url, tables, "binary"))
        results["floor_text"] = best(args.repeat, lambda: copy_floor(url, tables, "text"))
        engine.dispose()

    export_time = results["export"]
    floor = min(results["floor_binary"], results["floor_text"])

    def line(label: str, seconds: float, note: str = "") -> None:
        print(f"{label:<58} {seconds:7.2f} s  {note}")

    line(f"snapshot export (ADBC, {args.workers} connections, zstd Parquet)", export_time)
    if "incremental" in results:
        line(
            "  incremental, after 1% of deals moved",
            results["incremental"],
            f"{export_time / results['incremental']:.1f}x faster than full",
        )
    if "pandas" in results:
        line(
            "pandas.read_sql + to_parquet",
            results["pandas"],
            f"export is {results['pandas'] / export_time:.1f}x faster (goal: >= 5x)",
        )
    line(
        "COPY csv -> pyarrow -> Parquet (untyped)",
        results["copy_csv"],
        f"export is {results['copy_csv'] / export_time:.2f}x faster",
    )
    line("bare COPY (binary) -> /dev/null", results["floor_binary"])
    line("bare COPY (text) -> /dev/null", results["floor_text"])
    print(f"\nexport / floor (fastest bare COPY) = {export_time / floor:.2f} (goal: <= 1.5)")


if __name__ == "__main__":
    main()
