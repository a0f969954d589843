"""The record pages of the busiest company and deal: opening them as built (a timeline page of 10,
reference pickers listing 50 records) against pages that show every activity and list every record.

    .venv/bin/python benchmarks/record.py                 # demo scales 0.5 and 5
    .venv/bin/python benchmarks/record.py --scales 0.5    # fewer

For each size it prints, in one run: the time to build ``RecordPage`` for the company and the
deal with the most activities (record, related records, timeline, pickers) and the size of
the widgets' state the kernel sends to the browser, both against the baseline; then the time
of a save (one field, with its version). Times are the best of --repeat runs. Without --url it
starts a throwaway PostgreSQL cluster and loads demo data into it (CRM_DATABASE_URL is ignored:
the benchmark replaces the data of the database it runs on).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json

import ipywidgets as widgets
from harness import best, busiest, database

from crm_kernel import CRM
from crm_kernel import demo as demo_data
from crm_kernel.db import connect_engine
from crm_kernel.widgets import record_form
from crm_kernel.widgets.record_page import RecordPage

EVERYTHING = 10**9  # a page size and picker length that show every row: the baseline


def state_bytes(widget: widgets.Widget) -> int:
    """What the kernel sends the browser for ``widget`` and everything inside it."""
    seen, todo, size = set(), [widget], 0
    while todo:
        w = todo.pop()
        if w.model_id in seen:
            continue
        seen.add(w.model_id)
        size += len(json.dumps(w.get_state(), default=str))
        todo += [v for v in vars(w).values() if isinstance(v, widgets.Widget)]
        todo += [c for c in getattr(w, "children", ()) if isinstance(c, widgets.Widget)]
        layout = getattr(w, "layout", None)
        if isinstance(layout, widgets.Widget):
            todo.append(layout)
    return size


def open_page(crm: CRM, entity: str, record_id: str, everything: bool) -> RecordPage:
    record_form.PICKER_OPTIONS = EVERYTHING if everything else 50
    return RecordPage(crm, entity, record_id, page_size=EVERYTHING if everything else None)


def measure(crm: CRM, entity: str, record_id: str, repeat: int) -> dict:
    open_page(crm, entity, record_id, False)  # warm up: imports, catalog, connections
    shown = open_page(crm, entity, record_id, False)
    field = {"companies": "industry", "deals": "description"}[entity]
    flip = iter(["Logistics", "Freight"] * repeat)

    def save() -> None:
        shown.form.editors[field].input.value = next(flip)
        assert shown.form.save(), shown.form.message.value

    return {
        "activities": shown.timeline.total,
        "page": best(repeat, lambda: open_page(crm, entity, record_id, False)),
        "all": best(repeat, lambda: open_page(crm, entity, record_id, True)),
        "page_bytes": state_bytes(shown),
        "all_bytes": state_bytes(open_page(crm, entity, record_id, True)),
        "save": best(repeat, save),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scales", type=float, nargs="+", default=[0.5, 5], help="demo data scales (2,000 deals each); default 0.5 5"
    )
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", help="an existing database (its data is replaced!)")
    args = parser.parse_args()

    with database(args.url, prefix="crm-bench-record-") as url:
        engine = connect_engine(url)
        print(
            f"{'page':>9} {'companies':>9} {'activities':>10} | {'open page':>9} {'show all':>9} {'ratio':>6} "
            f"| {'state sent':>10} {'show all':>9} | {'save':>6}"
        )
        for scale in args.scales:
            counts = demo_data.load(engine, scale=scale, today=dt.date.today(), replace=True)
            with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
                conn.exec_driver_sql("VACUUM ANALYZE")
            crm = CRM(engine)
            for entity, key in (("companies", "company_id"), ("deals", "deal_id")):
                row = measure(crm, entity, busiest(engine, key), args.repeat)
                print(
                    f"{entity:>9} {counts['companies']:>9,} {row['activities']:>10,} | {row['page'] * 1000:>7.0f}ms "
                    f"{row['all'] * 1000:>7.0f}ms {row['all'] / row['page']:>5.1f}x "
                    f"| {row['page_bytes'] / 1024:>8.0f}kB {row['all_bytes'] / 1024:>7.0f}kB "
                    f"| {row['save'] * 1000:>4.0f}ms",
                    flush=True,
                )
        engine.dispose()


if __name__ == "__main__":
    main()
