"""The result grid against a plain ipydatagrid.DataGrid: time to first page and kernel memory.

    .venv/bin/python benchmarks/grid.py                    # 10k, 100k and 1M rows
    .venv/bin/python benchmarks/grid.py --rows 10000 100000 --url postgresql://...

For each result size it runs, each in a fresh Python process (so that one run's memory cannot
hide in another's):

- paged: ``ResultGrid.show(spec)``: a count spec and the first page of 1,000 rows, then the
  grid's state serialised as ipywidgets sends it to the browser; then the next page and the last
  one (server-side OFFSET paging: the deeper the page, the more rows PostgreSQL skips);
- plain: ``crm.query(spec)``, the frame into pandas, ``ipydatagrid.DataGrid(frame)`` and its
  state serialised: the whole result goes to the browser at once.

It prints the seconds until the first page is ready to send, the kernel's peak memory growth
(the process's resident-set high-water mark above what it held after imports and connecting),
and the bytes that go to the browser. The results are tables ``bench_rows_<N>`` (id uuid
primary key, text, numeric, date, timestamptz) created for the run: without --url in a
throwaway cluster (CRM_DATABASE_URL is ignored), else in that database, and dropped afterwards.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROWS = (10_000, 100_000, 1_000_000)
HERE = Path(__file__).resolve().parent


def table(rows: int) -> str:
    return f"bench_rows_{rows}"


def create_tables(url: str, sizes) -> None:
    import sqlalchemy as sa

    from crm_kernel.db import connect_engine

    engine = connect_engine(url)
    with engine.begin() as conn:
        for rows in sizes:
            name = table(rows)
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {name}"))
            conn.execute(
                sa.text(f"""
                CREATE TABLE {name} AS
                SELECT md5(g::text)::uuid AS id,
                       'Deal ' || g AS title,
                       (ARRAY['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli'])[1 + g % 5]
                           || ' ' || (g % 997) AS company,
                       round((g % 100000) * 1.37, 2)::numeric(12, 2) AS value,
                       (ARRAY['Lead', 'Qualified', 'Proposal', 'Negotiation', 'Won', 'Lost'])[1 + g % 6] AS stage,
                       DATE '2026-01-01' + (g % 720) AS close_date,
                       TIMESTAMPTZ '2025-01-01 00:00:00+00' + g * INTERVAL '37 seconds' AS created_at
                FROM generate_series(1, :rows) AS g"""),
                {"rows": rows},
            )
            conn.execute(sa.text(f"ALTER TABLE {name} ADD PRIMARY KEY (id)"))
            conn.execute(sa.text(f"ANALYZE {name}"))
    engine.dispose()


def drop_tables(url: str, sizes) -> None:
    import sqlalchemy as sa

    from crm_kernel.db import connect_engine

    engine = connect_engine(url)
    with engine.begin() as conn:
        for rows in sizes:
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {table(rows)}"))
    engine.dispose()


# -- one measurement, in its own process -------------------------------------------------------


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def _reset_peak() -> bool:
    """Reset the resident-set high-water mark (Linux 4.0+); False where not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _sent_bytes(widget) -> int:
    """What ipywidgets sends to the browser for this widget's state: JSON plus binary buffers."""
    from ipywidgets.widgets.widget import _remove_buffers

    state, _paths, buffers = _remove_buffers(widget.get_state())
    return len(json.dumps(state, default=str).encode()) + sum(len(memoryview(b).cast("B")) for b in buffers)


def measure(mode: str, rows: int, url: str) -> dict:
    import pandas  # noqa: F401  (imported before the baseline, like in a notebook)
    from ipydatagrid import DataGrid

    from crm_kernel import CRM
    from crm_kernel.widgets import ResultGrid

    crm = CRM.connect(url)
    spec = {"entity": table(rows)}
    crm.query({"entity": table(rows), "limit": 1})  # warm the connection pool and the schema caches
    reset = _reset_peak()
    baseline = _status_kb("VmRSS") if reset else _status_kb("VmHWM")
    out: dict = {"mode": mode, "rows": rows}
    started = time.perf_counter()
    if mode == "paged":
        grid = ResultGrid(crm)
        run = grid.show(spec)
        out["sent_bytes"] = _sent_bytes(grid.datagrid)
        out["first_page_s"] = time.perf_counter() - started
        out["shown_rows"] = run.page_rows
        assert run.rows == rows
        t = time.perf_counter()
        grid.next_page()
        out["next_page_s"] = time.perf_counter() - t
        t = time.perf_counter()
        grid._load((rows - 1) // grid.page_size * grid.page_size)
        out["last_page_s"] = time.perf_counter() - t
    else:
        frame = crm.query(spec)
        data = frame.to_pandas()
        grid = DataGrid(data)
        out["sent_bytes"] = _sent_bytes(grid)
        out["first_page_s"] = time.perf_counter() - started
        out["shown_rows"] = len(data)
    out["peak_mb"] = (_status_kb("VmHWM") - baseline) / 1024
    crm.close()
    return out


def run_one(mode: str, rows: int, url: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--one", mode, "--rows", str(rows), "--url", url],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"{mode} {rows} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=list(ROWS))
    parser.add_argument("--url", help="PostgreSQL URL [default: a throwaway cluster]")
    parser.add_argument("--one", choices=("paged", "plain"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        print(json.dumps(measure(args.one, args.rows[0], args.url)))
        return

    sys.path.insert(0, str(HERE))
    from harness import database

    with database(args.url, prefix="crm-bench-grid-") as url:
        print(f"creating {', '.join(f'{n:,}' for n in args.rows)}-row tables ...", flush=True)
        create_tables(url, args.rows)
        try:
            print(
                f"\n{'rows':>10} | {'grid':<24} | {'first page':>10} | {'next page':>9} | {'last page':>9} | "
                f"{'kernel peak':>11} | {'to browser':>11}"
            )
            print("-" * 104)
            for rows in args.rows:
                paged, plain = run_one("paged", rows, url), run_one("plain", rows, url)
                for r, name in ((paged, "ResultGrid (1,000/page)"), (plain, "plain DataGrid")):
                    nxt = f"{r['next_page_s'] * 1000:7.0f} ms" if "next_page_s" in r else f"{'':>9}"
                    last = f"{r['last_page_s'] * 1000:7.0f} ms" if "last_page_s" in r else f"{'':>9}"
                    print(
                        f"{rows:>10,} | {name:<24} | {r['first_page_s']:8.2f} s | {nxt} | {last} | "
                        f"{r['peak_mb']:8.1f} MB | {r['sent_bytes'] / 1e6:8.2f} MB"
                    )
                print(
                    f"{'':>10} | {'ratio plain / paged':<24} | "
                    f"{plain['first_page_s'] / paged['first_page_s']:8.1f} x | "
                    f"{'':>9} | {'':>9} | {plain['peak_mb'] / max(paged['peak_mb'], 0.1):8.1f} x | "
                    f"{plain['sent_bytes'] / paged['sent_bytes']:8.1f} x",
                    flush=True,
                )
        finally:
            drop_tables(url, args.rows)


if __name__ == "__main__":
    main()
