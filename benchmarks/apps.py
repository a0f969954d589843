"""Every app of ``dashboards/`` as a person opens it: time to a rendered page and the memory
its kernel keeps, against the goal of 2 s and 150 MB per open app.

    .venv/bin/python benchmarks/apps.py                 # demo data at scale 1 (as `make demo`)
    .venv/bin/python benchmarks/apps.py --scale 0.05    # smaller and quicker

In one run it starts ``crm serve`` (``--no-sign-in`` when the server has that option), opens
each app in Chromium (Playwright, Debian's /usr/bin/chromium) and prints, per app:

- the seconds from navigation until its ready marker is visible (``READY`` in harness.py: an
  element its widgets draw once their data is in; the record page shows the deal with the most
  activities) and the kernel has answered every message the page sent: cold (``--pool 0``:
  the kernel starts when the page asks) and preheated (``--pool 2``: kernels started before
  anyone asks), when ``crm serve`` has ``--pool``; without it only cold, as the server always is;
- its kernel's memory while every app is open: RSS (resident), PSS (resident, pages shared
  with other processes split between them) and USS (pages no other process has: what closing
  the page gives back);
- the ratios against the goal (time / 2 s, RSS / 150 MB: under 1.0 meets it).

The same run opens ``bare.ipynb``, a one-widget notebook written to a scratch folder beside the
apps: the floor any Voilà kernel costs, the baseline the apps are read against.

Without --url it starts a throwaway PostgreSQL cluster and loads demo data into it
(CRM_DATABASE_URL is ignored: the benchmark replaces the data of the database it runs on).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil  # ipykernel's own dependency
from harness import QUERY, Server, database, launch_chromium, open_app, ready_marker

from crm_kernel import demo as demo_data
from crm_kernel.db import connect_engine
from crm_kernel.serve import dashboards_dir

GOAL_SECONDS = 2.0
GOAL_MB = 150.0
BARE = "bare.ipynb"
BARE_READY = "#rendered_cells .jupyter-widgets, #rendered_cells .widget-box"  # its one Label shown
POOL_READY_SECONDS = 180
# The kernel has handled every widget message the page sent: a kernel_info request is answered
# only after them (tests/browser/harness.py settles pages the same way).
_SETTLE_JS = """async () => {
    const manager = window.jupyterapp && window.jupyterapp.widgetManager;
    const busy = async () => (await Promise.all(Object.values(manager._models)))
        .some(m => m._pending_msgs > 0 || m._msg_buffer);
    while (await busy()) await new Promise(resolve => setTimeout(resolve, 20));
    await manager._kernel.requestKernelInfo();
    return manager._kernel.id;
}"""


def bare_notebook() -> dict:
    source = "import ipywidgets\nipywidgets.Label('ready')"
    return {
        "nbformat": 4,
        "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
        "cells": [
            {
                "cell_type": "code",
                "id": "bare",
                "metadata": {},
                "execution_count": None,
                "outputs": [],
                "source": source,
            }
        ],
    }


def serve_options() -> set[str]:
    """The options ``crm serve`` knows (another version may lack --pool or --no-sign-in)."""
    help_text = subprocess.run(
        [sys.executable, "-m", "crm_kernel.cli", "serve", "--help"], capture_output=True, text=True, check=True
    ).stdout
    return {word.strip(",") for word in help_text.split() if word.startswith("--")}


class AppServer(Server):
    """``crm serve`` whose kernels can be found and weighed."""

    def kernels(self) -> dict[str, psutil.Process]:
        """The server's kernels by id (their connection file is kernel-<id>.json)."""
        found = {}
        for child in psutil.Process(self.proc.pid).children(recursive=True):
            try:
                for arg in child.cmdline():
                    name = Path(arg).name
                    if name.startswith("kernel-") and name.endswith(".json"):
                        found[name[len("kernel-") : -len(".json")]] = child
            except psutil.Error:
                pass
        return found

    def wait_for_idle_kernels(self, at_least: int) -> int:
        """Wait until ``at_least`` kernels run and none has used CPU for a second (a preheated
        pool has finished running its notebooks); returns how many there are."""
        deadline = time.monotonic() + POOL_READY_SECONDS
        while time.monotonic() < deadline:
            kernels = list(self.kernels().values())
            if len(kernels) >= at_least:
                before = sum(_cpu(k) for k in kernels)
                time.sleep(1)
                if sum(_cpu(k) for k in kernels) - before < 0.05 and len(self.kernels()) == len(kernels):
                    return len(kernels)
            else:
                time.sleep(0.5)
        return len(self.kernels())


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
        return times.user + times.system
    except psutil.Error:
        return 0.0


def memory_mb(process: psutil.Process) -> tuple[float, float, float]:
    """RSS, PSS and USS of a process, in MB (from /proc/<pid>/smaps)."""
    info = process.memory_full_info()
    return info.rss / 2**20, info.pss / 2**20, info.uss / 2**20


def open_settled(browser, server: Server, name: str, ready: str, query: str) -> tuple[object, float, str]:
    """Open one app in a fresh context; returns the page, seconds until it is rendered and its
    kernel has answered every message the page sent, and its kernel id."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    started = time.perf_counter()
    page, _ = open_app(context, server.url, name, ready, query)
    kernel_id = page.evaluate(_SETTLE_JS)
    return page, time.perf_counter() - started, kernel_id


def run_mode(browser, folder: Path, apps: dict[str, tuple[str, str]], options: list[str], pool: int, log: Path) -> dict:
    """Open every app (name -> ready marker, address query) on one server; their times and,
    with all of them open, their kernels' memory."""
    server = AppServer(["--dir", str(folder), *options], log)
    try:
        if pool:
            server.wait_for_idle_kernels(pool)
        opened = {}
        for name, (ready, query) in apps.items():
            opened[name] = open_settled(browser, server, name, ready, query)
        time.sleep(1)  # the last page's kernel finishes handling its comm messages
        kernels = server.kernels()
        results = {}
        for name, (_page, seconds, kernel_id) in opened.items():
            process = kernels.get(kernel_id)
            results[name] = {"seconds": seconds, "memory": memory_mb(process) if process else None}
        for page, _, _ in opened.values():
            page.context.close()
        return results
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", help="an existing database (its data is replaced!)")
    parser.add_argument("--scale", type=float, default=1, help="demo data scale (2,000 deals each); default 1")
    parser.add_argument("--apps", nargs="+", help="only these apps of dashboards/ (e.g. pipeline.ipynb)")
    parser.add_argument(
        "--log", type=Path, default=Path("test-artifacts/bench-apps-voila.log"), help="where crm serve's output goes"
    )
    args = parser.parse_args()

    from playwright.sync_api import sync_playwright

    options = serve_options()
    extra = ["--no-sign-in"] if "--no-sign-in" in options else []
    modes = [("cold", 0), ("preheated", 2)]
    if "--pool" not in options:
        print("crm serve has no --pool option: only cold starts are measured (no preheated kernels)")
        modes = [("cold", 0)]
    names = args.apps or sorted(p.name for p in dashboards_dir().glob("*.ipynb"))
    markers = {name: ready_marker(name) for name in names}  # every app known before anything starts
    folder = Path(tempfile.mkdtemp(prefix="crm-bench-apps-"))
    folder.chmod(0o755)
    for name in names:
        (folder / name).symlink_to(dashboards_dir() / name)
    (folder / BARE).write_text(json.dumps(bare_notebook()))
    args.log.parent.mkdir(parents=True, exist_ok=True)

    with database(args.url, prefix="crm-bench-apps-") as url:
        engine = connect_engine(url)
        deals = demo_data.load(engine, scale=args.scale, today=dt.date.today(), replace=True)["deals"]
        apps = {BARE: (BARE_READY, "")} | {
            name: (markers[name], QUERY[name](engine) if name in QUERY else "") for name in names
        }
        engine.dispose()
        print(
            f"{deals:,} deals; crm serve {' '.join(extra) or '(no extra options)'}; goal {GOAL_SECONDS:g} s "
            f"and {GOAL_MB:g} MB per open app (ratio < 1 meets it)"
        )
        results = {}
        with sync_playwright() as playwright:
            browser = launch_chromium(playwright)
            try:
                for mode, pool in modes:
                    pooled = [*extra, "--pool", str(pool)] if "--pool" in options else extra
                    results[mode] = run_mode(browser, folder, apps, pooled, pool, args.log)
            finally:
                browser.close()
    shutil.rmtree(folder, ignore_errors=True)

    print(f"{'app':<18} {'mode':<10} | {'rendered':>8} {'ratio':>6} | {'RSS':>7} {'PSS':>7} {'USS':>7} {'ratio':>6}")
    for mode, apps in results.items():
        for name, result in apps.items():
            shown = f"({name[:-6]})" if name == BARE else name[:-6]
            memory = result["memory"]
            mem = (
                f"{memory[0]:>5.0f}MB {memory[1]:>5.0f}MB {memory[2]:>5.0f}MB {memory[0] / GOAL_MB:>5.2f}x"
                if memory
                else f"{'(kernel not found)':>33}"
            )
            print(
                f"{shown:<18} {mode:<10} | {result['seconds']:>7.2f}s {result['seconds'] / GOAL_SECONDS:>5.2f}x "
                f"| {mem}",
                flush=True,
            )


if __name__ == "__main__":
    main()
