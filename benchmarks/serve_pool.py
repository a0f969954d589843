"""Opening an app with preheated kernels (``crm serve --pool 1``) against starting a kernel per
page (``--pool 0``, the baseline), in Chromium.

    .venv/bin/python benchmarks/serve_pool.py                    # the workbench, 3 opens each
    .venv/bin/python benchmarks/serve_pool.py --app pipeline.ipynb --opens 5

For each server it signs a browser in, then opens the app ``--opens`` times, each in a fresh
page, and times from the request until the app's widgets are visible; with a pool it first
waits until the pool is full again and then --gap seconds more (Voilà reports a pool full once
its kernels have started, while they may still be importing the app's modules), as when people
open apps minutes apart. It prints the
median of each and their ratio. Without --url it starts a throwaway PostgreSQL cluster and
loads demo data into it (CRM_DATABASE_URL is ignored: the benchmark replaces the data of the
database it runs on).
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import statistics
import tempfile
import time
from pathlib import Path

from harness import QUERY, READY, Server, database, launch_chromium, open_app

from crm_kernel import demo as demo_data
from crm_kernel.access import tokens
from crm_kernel.db import connect_engine
from crm_kernel.serve import dashboards_dir


def pool_fills(log: Path, app: str) -> int:
    """How often the app's pool has been filled (Voilà logs each time)."""
    return len(re.findall(rf"Kernel pool of {re.escape(app)} is filled", log.read_text(errors="replace")))


def open_times(
    browser, address: str, token: str, app: str, query: str, opens: int, log: Path | None, gap: float
) -> list[float]:
    context = browser.new_context()
    context.request.get(f"{address}?token={token}")
    times = []
    for done in range(opens):
        if log is not None:  # a full pool: as when people open apps minutes apart
            while pool_fills(log, app) < done + 1:
                time.sleep(0.2)
            time.sleep(gap)
        page, seconds = open_app(context, address, app, READY[app], query, timeout_ms=300_000)
        times.append(seconds)
        page.close(run_before_unload=True)  # the page's beacon shuts its kernel down
    context.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--app", default="workbench.ipynb", choices=sorted(READY))
    parser.add_argument("--opens", type=int, default=3)
    parser.add_argument("--scale", type=float, default=0.1)
    parser.add_argument("--gap", type=float, default=45, help="seconds between a full pool and the next open")
    parser.add_argument("--url", help="an existing database (its data is replaced!)")
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    with database(args.url) as url:
        engine = connect_engine(url)
        demo_data.load(engine, scale=args.scale, seed=1, today=dt.date.today(), replace=True)
        token = tokens.issue(engine, "system@crm.local")[1]
        query = QUERY[args.app](engine) if args.app in QUERY else ""
        engine.dispose()
        assert (dashboards_dir() / args.app).exists(), args.app
        medians = {}
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            for pool in (0, 1):
                log = Path(tempfile.mkstemp(prefix=f"crm-serve-pool{pool}-", suffix=".log")[1])
                server = Server(["--pool", str(pool)], log)
                try:
                    times = open_times(
                        browser, server.url, token, args.app, query, args.opens, log if pool else None, args.gap
                    )
                finally:
                    server.stop()
                medians[pool] = statistics.median(times)
                print(
                    f"--pool {pool}: {args.app} ready in {medians[pool]:.2f} s (median of "
                    f"{', '.join(f'{t:.2f}' for t in times)})"
                )
            browser.close()
        print(
            f"ratio: a preheated open takes {medians[1] / medians[0]:.2f}x the time of a cold one "
            f"({medians[0] / medians[1]:.1f}x faster)"
        )


if __name__ == "__main__":
    main()
