"""What every benchmark needs: a database to run on and a fair clock; and, for those that open
the apps in Chromium, ``crm serve`` on a free port and a page timed until its app has rendered."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from unittest.mock import patch

import sqlalchemy as sa

from crm_kernel.db import connect_engine, migrate
from crm_kernel.db.embedded import EmbeddedPostgres, free_port


@contextmanager
def database(url: str | None, prefix: str = "crm-bench-") -> Iterator[str]:
    """``url`` when given explicitly (``--url``), else a migrated throwaway cluster, destroyed
    afterwards.

    CRM_DATABASE_URL is never read: benchmarks replace the data they run on, and a variable
    left set in a shell must not turn a benchmark loose on a real CRM. While the benchmark runs,
    the variable names its own database, so that nothing in the library can reach another."""
    if url:
        with patch.dict(os.environ, CRM_DATABASE_URL=url):
            yield url
        return
    scratch = Path(tempfile.mkdtemp(prefix=prefix))
    scratch.chmod(0o755)  # the postgres system user must reach the cluster inside
    cluster = EmbeddedPostgres(scratch / "pg", fast=True)
    try:
        url = cluster.start()
        engine = connect_engine(url)
        migrate(engine)
        engine.dispose()
        with patch.dict(os.environ, CRM_DATABASE_URL=url):
            yield url
    finally:
        cluster.destroy()
        shutil.rmtree(scratch, ignore_errors=True)


def timings(repeat: int, run: Callable[[], object]) -> list[float]:
    """Seconds taken by each of ``repeat`` runs."""
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def best(repeat: int, run: Callable[[], object]) -> float:
    """The fastest run, in seconds: the one least disturbed by a noisy machine."""
    return min(timings(repeat, run))


def busiest(engine: sa.Engine, key: str) -> str:
    """The record with the most activities, by the activities' column ``key`` (company_id, deal_id)."""
    with engine.connect() as conn:
        return str(
            conn.execute(
                sa.text(
                    f"SELECT {key} FROM activities WHERE {key} IS NOT NULL "
                    f"GROUP BY {key} ORDER BY count(*) DESC LIMIT 1"
                )
            ).scalar_one()
        )


# -- the apps in Chromium ------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"  # Debian's: `playwright install` cannot download here
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# What shows that each app of dashboards/ has rendered: an element its widgets draw once their
# data is in (classes from crm_kernel/widgets: the .js front ends and add_class()).
READY = {
    "find.ipynb": ".crm-search-box .crm-search-input",  # search.js: the search box
    "forecast.ipynb": ".crm-forecast-chart svg .mark-rect path",  # the forecast's bars, drawn by Vega
    "home.ipynb": ".crm-my-day .crm-kpi[data-kpi]",  # My day: a KPI card holding its figure (kpi.js)
    "pipeline.ipynb": ".crm-board .pb-card",  # pipeline_board.js: a deal's card
    "record.ipynb": ".crm-record-page .crm-record-title",  # the record's heading, not the "missing" note
    "workbench.ipynb": ".crm-workbench",
}
# The address an app needs beyond its name (the record page shows the busiest deal).
QUERY: dict[str, Callable[[sa.Engine], str]] = {
    "record.ipynb": lambda engine: f"?entity=deals&id={busiest(engine, 'deal_id')}",
}
PAGE_TIMEOUT_MS = 180_000
SERVER_START_SECONDS = 120

_READY_JS = """([ready]) => {
    const loading = document.getElementById("loading");
    if (loading && loading.offsetParent !== null) return false;
    const el = document.querySelector(ready);
    if (el && el.offsetParent !== null) return "ready";
    const failed = [...document.querySelectorAll("[data-mime-type='application/vnd.jupyter.stderr']")]
        .map(e => e.innerText).find(t => /Traceback|Error/.test(t));
    return failed || false;
}"""


def launch_chromium(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)


def ready_marker(name: str) -> str:
    """The CSS selector that shows app ``name`` has rendered; an app without one is refused
    up front rather than timed until it times out."""
    if name not in READY:
        raise SystemExit(
            f"{name}: no ready marker; add the CSS selector of what it renders to READY in benchmarks/harness.py"
        )
    return READY[name]


def wait_ready(page, name: str, ready: str, timeout_ms: int = PAGE_TIMEOUT_MS) -> None:
    """Wait until ``ready`` is visible on ``page``; a cell that fails or a marker that never
    appears ends the benchmark with a message naming the app and the marker."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        found = page.wait_for_function(_READY_JS, arg=[ready], timeout=timeout_ms, polling=50).json_value()
    except PlaywrightTimeout:
        shown = " ".join(page.inner_text("body").split())[:300] if page.query_selector("body") else ""
        raise SystemExit(
            f"{name}: its ready marker {ready!r} did not appear within {timeout_ms / 1000:g} s; "
            f"the page shows: {shown or '(nothing)'}"
        ) from None
    if found != "ready":
        raise SystemExit(f"{name} failed to render (waiting for {ready!r}):\n{found}")


def open_app(
    context, base_url: str, name: str, ready: str, query: str = "", timeout_ms: int = PAGE_TIMEOUT_MS
) -> tuple[object, float]:
    """Open app ``name`` in a new page of a browser context; returns the page and the seconds
    from navigation until ``ready`` was visible."""
    page = context.new_page()
    started = time.perf_counter()
    response = page.goto(f"{base_url}voila/render/{name}{query}", timeout=timeout_ms)
    if response is None or not response.ok:
        raise SystemExit(f"{name}: HTTP {response and response.status}")
    wait_ready(page, name, ready, timeout_ms)
    return page, time.perf_counter() - started


class Server:
    """``crm serve`` on a free port, in a process group of its own (stopped with its kernels),
    on the database the benchmark's ``database()`` names."""

    def __init__(self, options: list[str], log: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log = log
        with open(log, "w") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "crm_kernel.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--no-browser",
                    *options,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + SERVER_START_SECONDS
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(self.url, timeout=5):
                    return
            except urllib.error.HTTPError:
                return  # the sign-in page: it is up
            except OSError:
                time.sleep(0.2)
        self.stop()
        raise SystemExit(f"crm serve did not come up:\n{log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
