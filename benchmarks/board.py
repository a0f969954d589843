"""The pipeline board at 1k, 10k and 100k deals: first render and the move round trip, against
loading every deal into the widget.

    .venv/bin/python benchmarks/board.py                 # 1k, 10k, 100k deals (scales 0.5, 5, 50)
    .venv/bin/python benchmarks/board.py --scales 0.5 5  # fewer

For each size it prints, in one run:

- first render: building ``PipelineBoard`` (stages, totals over every deal in SQL, the first page
  of each column, filter options) and encoding its synced state as JSON, as the kernel sends it
  to the browser; against the same widget with every deal loaded as a card (the baseline);
- the move round trip: a drop on board A (``move`` committed, A's two columns updated) until a
  second board B, listening on ``crm_changes``, has applied it (fetched the deal, re-queried the
  two columns' totals); against B reloading every deal when it hears of the move.

Times are the best of --repeat runs for renders and the median of --moves moves. Without --url
it starts a throwaway PostgreSQL cluster and loads demo data into it (CRM_DATABASE_URL is
ignored: the benchmark replaces the data of the database it runs on).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import threading
import time

from harness import best, database

from crm_kernel import CRM
from crm_kernel import demo as demo_data
from crm_kernel.db import connect_engine
from crm_kernel.db.engine import libpq_url
from crm_kernel.services.changes import ChangeListener
from crm_kernel.widgets.pipeline_board import PipelineBoard

EVERY_DEAL = 10**9  # a page size that loads every deal: the baseline


def first_render(crm: CRM, page_size: int | None) -> tuple[PipelineBoard, int]:
    board = PipelineBoard(crm, page_size=page_size, live=False)
    size = len(json.dumps(board.get_state(), default=str))
    return board, size


def render(crm: CRM, page_size: int | None, repeat: int) -> tuple[float, int]:
    sizes = []

    def run():
        board, size = first_render(crm, page_size)
        sizes.append(size)
        board.close()

    return best(repeat, run), sizes[-1]


def round_trips(crm: CRM, url: str, moves: int) -> tuple[float, float]:
    """Median seconds from a drop on board A until board B shows it: incremental B, reloading B."""
    a = PipelineBoard(crm)
    b = PipelineBoard(CRM(crm.engine))
    lead, qualified = a.columns[0]["id"], a.columns[1]["id"]
    deal = next(c for c in a.columns[0]["cards"] if c["value"] is not None)["id"]
    assert a.wait_ready() and b.wait_ready()

    def other_stage() -> str:  # where to move the deal next (never where it is: that writes nothing)
        return lead if str(crm.deals.get(deal)["stage_id"]) == qualified else qualified

    incremental = []
    for _ in range(moves):
        seen = b.applied
        target = other_stage()
        started = time.perf_counter()
        assert a.move(deal, target)["ok"]
        while b.applied == seen:
            time.sleep(0.0005)
        incremental.append(time.perf_counter() - started)
    a.close()
    b.close()

    # The baseline: a board that reloads every deal whenever it hears of a change.
    a = PipelineBoard(crm, live=False)
    naive = PipelineBoard(CRM(crm.engine), page_size=EVERY_DEAL, live=False)
    done = threading.Event()

    def reload(change):
        if change["entity"] != "deals":
            return  # the move's stage_change activity: the deal's own notification came first
        naive.refresh()
        json.dumps(naive.get_state(), default=str)
        done.set()

    listener = ChangeListener(url, reload)
    assert listener.wait_ready()
    reloading = []
    for _ in range(moves):
        done.clear()
        target = other_stage()
        started = time.perf_counter()
        assert a.move(deal, target)["ok"]
        assert done.wait(600), "the reloading board never heard of the move"
        reloading.append(time.perf_counter() - started)
    listener.close()
    a.close()
    naive.close()
    return statistics.median(incremental), statistics.median(reloading)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales",
        type=float,
        nargs="+",
        default=[0.5, 5, 50],
        help="demo data scales (2,000 deals each); default 0.5 5 50 = 1k, 10k, 100k deals",
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--moves", type=int, default=7)
    parser.add_argument("--url", help="an existing database (its data is replaced!)")
    args = parser.parse_args()

    with database(args.url, prefix="crm-bench-board-") as url:
        engine = connect_engine(url)
        print(
            f"{'deals':>8} | {'first render':>12} {'all deals':>10} {'ratio':>6} "
            f"| {'state sent':>10} {'all deals':>10} "
            f"| {'round trip':>10} {'reload all':>10} {'ratio':>6}"
        )
        for scale in args.scales:
            deals = demo_data.load(engine, scale=scale, today=dt.date.today(), replace=True)["deals"]
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")  # as autovacuum leaves a database at rest
            crm = CRM(engine)
            first_render(crm, None)[0].close()  # warm up: imports, catalog, connections
            board_s, board_bytes = render(crm, None, args.repeat)
            all_s, all_bytes = render(crm, EVERY_DEAL, args.repeat)
            trip, reload = round_trips(crm, libpq_url(url), args.moves)
            print(
                f"{deals:>8,} | {board_s * 1000:>10.0f}ms {all_s * 1000:>8.0f}ms {all_s / board_s:>5.1f}x "
                f"| {board_bytes / 1024:>8.0f}kB {all_bytes / 1024:>8.0f}kB "
                f"| {trip * 1000:>8.0f}ms {reload * 1000:>8.0f}ms {reload / trip:>5.1f}x",
                flush=True,
            )
        engine.dispose()


if __name__ == "__main__":
    main()
