"""Importing contacts from CSV: crm.importer against a bare COPY of the same file and pandas
to_sql, over the same rows, in one run.

    .venv/bin/python benchmarks/import.py                 # 1,000,000 contacts
    .venv/bin/python benchmarks/import.py --rows 100000

Measures, each into an emptied contacts table (indexes, triggers and constraints as they are):

- ``crm.importer.run("contacts", file, fast=False)``: read, map, validate, dedup (in the file
  and against the database), COPY, bulk audit rows marked as imported, one transaction;
- the same with the fast path (the default for a file this big against an empty table): the
  table's non-unique secondary indexes dropped for the COPY and rebuilt after it (db/bulk.py);
- the floor: ``COPY contacts (first_name, last_name, email, ...) FROM STDIN (FORMAT csv)`` of
  the same file's bytes, nothing else;
- pandas ``read_csv`` + ``to_sql(method="multi", chunksize=...)`` of the same file (no
  validation, no dedup, no audit), on a tenth of the rows (it is slow), scaled to rows/s;
- ``crm.importer.run`` as a rep through a login in role crm_app (row-level security applies,
  so the rows go through a temporary staging table and INSERT ... SELECT instead of COPY);
- ``crm.importer.preview`` alone (read, map, validate, dedup: everything but the writing), so
  that the importer's own work can be told from the database's.

``--plan-only`` measures only the last (no COPY at all).

``--repeat N`` times the bare COPY and both importer paths N times in turn and keeps each one's
best, for a machine shared with other work.

Without --url it uses a throwaway PostgreSQL cluster that it starts and destroys (never
CRM_DATABASE_URL).
"""

from __future__ import annotations

import argparse
import secrets
import tempfile
import time
from pathlib import Path

import polars as pl
import sqlalchemy as sa
from harness import database

from crm_kernel import CRM
from crm_kernel.db import connect_engine

COLUMNS = ["first_name", "last_name", "email", "phone", "job_title", "lead_source", "lead_score"]


def make_file(path: Path, rows: int) -> None:
    i = pl.int_range(rows, eager=True)
    pl.DataFrame(
        {
            "first_name": "First" + (i % 5000).cast(pl.String),
            "last_name": "Last" + i.cast(pl.String),
            "email": "person" + i.cast(pl.String) + "@example.com",
            "phone": "+1 555 " + (i % 10_000_000).cast(pl.String).str.zfill(7),
            "job_title": pl.Series(["Buyer", "CTO", "Engineer", "Analyst"]).gather(i % 4),
            "lead_source": pl.Series(["web", "event", "referral"]).gather(i % 3),
            "lead_score": (i % 101).cast(pl.String),
        }
    ).write_csv(path)


def empty(engine) -> None:
    with engine.begin() as conn:
        conn.exec_driver_sql("TRUNCATE contacts, audit_log RESTART IDENTITY CASCADE")


def bare_copy(engine, path: Path) -> float:
    started = time.perf_counter()
    with engine.begin() as conn:
        cursor = conn.connection.driver_connection.cursor()
        with (
            cursor.copy(f"COPY contacts ({', '.join(COLUMNS)}) FROM STDIN (FORMAT csv, HEADER true)") as copy,
            open(path, "rb") as fh,
        ):
            while block := fh.read(1 << 20):
                copy.write(block)
    return time.perf_counter() - started


def importer(crm: CRM, path: Path, fast: bool | None = None) -> float:
    started = time.perf_counter()
    report = crm.importer.run("contacts", path, fast=fast)
    assert report.created > 0 and report.refused == 0 and (fast is None or report.fast == fast)
    return time.perf_counter() - started


def rep_crm(engine) -> CRM:
    """A rep acting through a login in role crm_app, as the apps connect (sql/017)."""
    password = secrets.token_urlsafe(12)
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        exists = conn.exec_driver_sql("SELECT 1 FROM pg_roles WHERE rolname = 'crm_bench_import'").first()
        conn.exec_driver_sql(f"{'ALTER' if exists else 'CREATE'} ROLE crm_bench_import LOGIN PASSWORD '{password}'")
        conn.exec_driver_sql("GRANT crm_app TO crm_bench_import")
        conn.exec_driver_sql(
            "INSERT INTO users (email, full_name, role) VALUES ('bench.rep@example.com', 'Rep', 'rep') "
            "ON CONFLICT DO NOTHING"
        )
    app = connect_engine(
        engine.url.set(username="crm_bench_import", password=password).render_as_string(hide_password=False)
    )
    return CRM(app, user="bench.rep@example.com")


def pandas_to_sql(engine, path: Path, rows: int) -> float:
    import pandas as pd

    started = time.perf_counter()
    frame = pd.read_csv(path, nrows=rows, dtype={c: str for c in COLUMNS} | {"lead_score": "Int64"})
    frame.to_sql("contacts", engine, if_exists="append", index=False, method="multi", chunksize=2_000)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--url", help="a database to run on (its contacts and audit log are emptied)")
    parser.add_argument("--plan-only", action="store_true", help="time crm.importer.preview only")
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="time the bare COPY and both importer paths N times, in turn; keep the best",
    )
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="crm-import-bench-"))
    path = folder / "contacts.csv"
    make_file(path, args.rows)
    print(f"{args.rows:,} contacts, {path.stat().st_size / 1e6:.0f} MB of CSV")
    with database(args.url) as url:
        engine = connect_engine(url)
        crm = CRM(engine)
        empty(engine)
        started = time.perf_counter()
        planned = crm.importer.preview("contacts", path)
        plan = time.perf_counter() - started
        assert planned.created == args.rows
        print(f"{'crm.importer.preview (no writes)':<32} {args.rows / plan:>12,.0f} rows/s")
        if args.plan_only:
            return
        floor = ours = fast = float("inf")
        for _ in range(args.repeat):  # in turn, so that a busy spell on a shared machine hits all three
            floor = min(floor, bare_copy(engine, path))
            empty(engine)
            ours = min(ours, importer(crm, path, fast=False))
            with engine.connect() as conn:
                audited = conn.execute(sa.text("SELECT count(*) FROM audit_log WHERE imported")).scalar_one()
            empty(engine)
            fast = min(fast, importer(crm, path, fast=True))
            empty(engine)
        rep = rep_crm(engine)
        staged = importer(rep, path)
        rep.close()
        empty(engine)
        sample = max(1, args.rows // 10)
        slow = pandas_to_sql(engine, path, sample)
        empty(engine)
        engine.dispose()
    rate = {
        "bare COPY (floor)": args.rows / floor,
        "crm.importer.run (fast=False)": args.rows / ours,
        "crm.importer.run (fast path)": args.rows / fast,
        "crm.importer.run as a rep": args.rows / staged,
        f"pandas to_sql ({sample:,} rows)": sample / slow,
    }
    for name, value in rate.items():
        print(f"{name:<32} {value:>12,.0f} rows/s")
    print(f"importer / bare COPY time: {ours / floor:.2f}x   (audit rows written: {audited:,})")
    print(f"fast path / bare COPY time: {fast / floor:.2f}x   fast path vs normal: {ours / fast:.2f}x faster")
    print(f"importer as a rep (staged, row-level security) / as the owner (COPY): {staged / ours:.2f}x")
    print(f"importer vs pandas to_sql: {rate['crm.importer.run (fast=False)'] / (sample / slow):.1f}x faster")


if __name__ == "__main__":
    main()
