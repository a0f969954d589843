"""What showing names in the default columns costs: a spec without select against the same
spec selecting the raw ids (the default before names), on PostgreSQL and on a DuckDB snapshot.

    .venv/bin/python benchmarks/default_columns.py               # demo data at scale 5 (10,000 deals)
    .venv/bin/python benchmarks/default_columns.py --scale 0.5   # smaller and quicker

For deals and activities it times the grid's first page (1,000 rows, ordered by id) and the
whole result, best of --repeat runs, and prints the ratio names/ids.
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

from harness import best, database

from crm_kernel import CRM, snapshot
from crm_kernel.db import connect_engine
from crm_kernel.demo import loading
from crm_kernel.query.run import _CATALOG_SCHEMA


def raw_select(entity: str) -> list[str]:
    """The default columns as they were: every field under its own name, ids included."""
    return [name for name, column in _CATALOG_SCHEMA.table(entity).columns.items() if not column.computed]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=5, help="demo data scale (2,000 deals each)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--url", help="PostgreSQL URL [default: a throwaway cluster]")
    args = parser.parse_args()
    with database(args.url) as url:
        engine = connect_engine(url)
        loading.load(engine, scale=args.scale, today=dt.date(2026, 6, 30), replace=True)
        crm = CRM(engine)
        folder = snapshot.export(engine, Path(tempfile.mkdtemp(prefix="crm-bench-snap-")))
        with snapshot.open(folder) as snap:
            print(f"scale {args.scale}: best of {args.repeat}, seconds")
            print(f"{'entity':<11} {'engine':<9} {'result':<11} {'rows':>7} {'ids':>8} {'names':>8} {'ratio':>6}")
            for entity in ("deals", "activities"):
                for backend in ("postgres", "duckdb"):
                    for shape, extra in (("first page", {"order_by": ["id"], "limit": 1000}), ("all", {})):
                        names = {"entity": entity, **extra}
                        ids = {**names, "select": raw_select(entity)}

                        def run(spec, backend=backend):
                            return crm.execute(spec, backend, snapshot=snap if backend == "duckdb" else None)

                        rows = run(names).row_count
                        before = best(args.repeat, lambda spec=ids: run(spec))
                        after = best(args.repeat, lambda spec=names: run(spec))
                        print(
                            f"{entity:<11} {backend:<9} {shape:<11} {rows:>7} {before:>8.4f} {after:>8.4f} "
                            f"{after / before:>6.2f}"
                        )
        engine.dispose()


if __name__ == "__main__":
    main()
