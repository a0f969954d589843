"""Browser tests: one Voilà server and one Chromium for all of them, a fresh page per test.

The server, the browser and their database live as long as this package's tests (package
scope, so once per test session) and go when its last test is done: while Playwright's sync
API is started it keeps an asyncio loop running in the main thread, which the rest of the
suite (code that looks for a running loop, ``asyncio.run``) must not see.

- ``browser_database_url``: a database of its own in the session's cluster, holding demo data
  (scale 0.05, seed 1, centred on 2026-01-15), created before the server starts.
- ``dashboards``: ``crm serve`` itself (``python -m crm_kernel.cli serve``) on a free port, its
  kernels on that database, serving every notebook of ``dashboards/`` plus this folder's
  test-only apps (linked into one temporary folder), with sign-in and without a kernel pool
  (``--pool 0``: each page starts its kernel, as the tests of the apps expect). Its log is
  ``test-artifacts/browser/voila.log``. ``dashboards.token(email)`` issues a sign-in token and
  ``dashboards.sign_in(context, token)`` signs a browser context in with it.
- ``preheated``: a second ``crm serve``, with ``--pool 1``, serving only ``identity.ipynb``
  (started by the first test that asks for it; its log is ``voila-preheated.log``). It also
  runs as behind a reverse proxy (``--behind-proxy``) and with ``CRM_USER`` set to the system
  user, the server's own user that no page may act as.
- ``browser``: Debian's Chromium driven by Playwright (``playwright install`` cannot download
  here); missing, it fails the tests with what to install.
- ``page``: a new browser context per test, signed in as the system user, whose requests
  beyond the local machine are refused and listed in ``offsite_requests``; a screenshot of
  every test lands in ``test-artifacts/browser/<test>.png`` (``-failed`` added on failure, with
  the console log; the folder is emptied when the server starts).
- ``browser_errors``: what went wrong while the test ran. A test that uses ``page`` fails when
  any of its pages logged an uncaught exception or a console error, when a kernel sent a
  traceback after its page was ready (a widget callback, a logged exception, a dying thread),
  or when Voilà's log gained a traceback during the test; a test that provokes an error on
  purpose checks it with ``browser_errors.check()`` and then ``forget()``s it.

Helpers to drive the pages are in ``harness.py``.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import expect

from crm_kernel import demo as demo_data
from crm_kernel.access import tokens
from crm_kernel.db import connect_engine
from crm_kernel.db.embedded import free_port
from crm_kernel.serve import dashboards_dir
from tests.conftest import _database_maker
from tests.helpers import scratch_dir

from .harness import (
    ACTION_MS,
    APP_READY_MS,
    ARTIFACTS,
    ROOT,
    has_app,
    kernel_errors,
    problems_report,
    screenshot,
    settle,
    tracebacks,
    tree_noise,
)

APPS = ["smoke.ipynb", "errors.ipynb", "identity.ipynb"]  # test-only apps served beside the dashboards
collect_ignore = APPS  # served to the browser, not run by nbval
# Playwright's assertions wait 5 s by default, too little for a query on a busy two-core
# machine: they wait as long as any other action.
expect.set_options(timeout=ACTION_MS)

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SERVER_START_SECONDS = 90
DEMO = {"scale": 0.05, "seed": 1, "today": dt.date(2026, 1, 15)}
# Anything but this machine and inline data: matched inside Playwright, so local requests pass untouched.
OFFSITE = re.compile(r"^(?!(?:https?|wss?)://(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?/|data:|blob:)")


@pytest.fixture(scope="package")
def browser_database_url(engine) -> str:
    """A database of the browser tests' own, with demo data; dropped after them."""
    maker = _database_maker(engine)
    make = next(maker)
    url = make("crm_browser")
    demo_engine = connect_engine(url)
    demo_data.load(demo_engine, replace=True, **DEMO)
    demo_engine.dispose()
    yield url
    next(maker, None)


@dataclass
class Dashboards:
    """The running ``crm serve``: ``url`` ends with a slash; ``folder`` is what it serves."""

    url: str
    folder: Path
    log: Path
    database_url: str = ""

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def token(self, email: str) -> str:
        """A new sign-in token for the user with this e-mail (as `crm users token` makes one)."""
        engine = connect_engine(self.database_url)
        try:
            return tokens.issue(engine, email)[1]
        finally:
            engine.dispose()

    def sign_in(self, context, token: str) -> None:
        """Sign a browser context in as a sign-in link does (the cookie lands in the context)."""
        response = context.request.get(f"{self.url}?token={token}")
        assert response.ok, f"sign-in refused: HTTP {response.status}"


SYSTEM_USER = "system@crm.local"  # whom the apps' tests act as, as before sign-in existed


def _serve(
    folder: Path, log: Path, database_url: str, *options: str, env: dict | None = None
) -> tuple[subprocess.Popen, Dashboards]:
    """Start ``crm serve`` on a free port over ``folder``; fails the tests if it does not come up."""
    env = {**os.environ, "CRM_DATABASE_URL": database_url, "PYDEVD_DISABLE_FILE_VALIDATION": "1", **(env or {})}
    for attempt in range(3):  # another program may take the free port before Voilà does
        port = free_port()
        server = Dashboards(f"http://127.0.0.1:{port}/", folder, log, database_url)
        with open(log, "w") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "crm_kernel.cli",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--no-browser",
                    "--tracebacks",
                    "--dir",
                    str(folder),
                    *options,
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=ROOT,
                start_new_session=True,
            )
        if _wait_until_up(proc, server.url):
            return proc, server
        _stop(proc)
        if attempt == 2 or "cannot serve on" not in server.log_tail():
            pytest.fail(
                f"crm serve did not come up on {server.url} within {SERVER_START_SECONDS} s:\n{server.log_tail()}",
                pytrace=False,
            )


@pytest.fixture(scope="package")
def dashboards(browser_database_url):
    folder = scratch_dir("crm-dashboards-")
    for notebook in [*dashboards_dir().glob("*.ipynb"), *(Path(__file__).with_name(app) for app in APPS)]:
        (folder / notebook.name).symlink_to(notebook)
    shutil.rmtree(ARTIFACTS, ignore_errors=True)  # what an earlier run left would mislead
    ARTIFACTS.mkdir(parents=True)
    proc, server = _serve(folder, ARTIFACTS / "voila.log", browser_database_url, "--pool", "0")
    yield server
    _stop(proc)
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="package")
def preheated(dashboards):
    """``crm serve --pool 1 --behind-proxy`` over ``identity.ipynb`` alone: one kernel waits for
    a page; the server's own CRM_USER is the system user."""
    folder = scratch_dir("crm-preheated-")
    (folder / "identity.ipynb").symlink_to(Path(__file__).with_name("identity.ipynb"))
    proc, server = _serve(
        folder,
        ARTIFACTS / "voila-preheated.log",
        dashboards.database_url,
        "--pool",
        "1",
        "--behind-proxy",
        env={"CRM_USER": SYSTEM_USER},
    )
    yield server
    _stop(proc)
    shutil.rmtree(folder, ignore_errors=True)


def _wait_until_up(proc: subprocess.Popen, url: str) -> bool:
    """Poll ``/`` until it answers (the sign-in page's 403: it is up), the process ends or time is up."""
    deadline = time.monotonic() + SERVER_START_SECONDS
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if response.status == 200:
                    return True
        except urllib.error.HTTPError as refused:
            if refused.code == 403:
                return True
        except OSError:
            pass
        time.sleep(0.2)
    return False


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its kernels: SIGTERM lets Voilà shut its kernels down."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="package")
def browser():
    if not CHROMIUM.exists():
        pytest.fail(
            f"Chromium is missing: the browser tests drive Debian's {CHROMIUM}. "
            "Install it with `make chromium` (apt-get install chromium); "
            "`playwright install` cannot download a browser here.",
            pytrace=False,
        )
    from playwright.sync_api import sync_playwright

    playwright = sync_playwright().start()
    try:
        # Playwright gives every launch a fresh temporary profile (--user-data-dir) and removes it.
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()
    finally:
        playwright.stop()


@pytest.fixture
def offsite_requests() -> list[str]:
    """URLs the test's page asked for beyond the local machine (refused: there is no network)."""
    return []


@dataclass
class BrowserErrors:
    """What went wrong while one test ran, in its pages, their kernels and Voilà's log."""

    log: Path
    start: int  # where the test's slice of Voilà's log begins
    logged: list[str] = field(default_factory=list)  # uncaught exceptions and console errors of its pages
    pages: list = field(default_factory=list)

    def watch(self, context) -> None:
        context.on("weberror", lambda error: self.logged.append(f"uncaught in the page: {error.error}"))
        context.on("console", self._console)
        context.on("page", lambda page: self.pages.append(page))

    def _console(self, message) -> None:
        if message.type != "error":
            return
        text = f"console error: {message.text} ({message.location.get('url', '')})"
        if not (_is_tree(message.page) and tree_noise(text)):
            self.logged.append(text)

    def log_slice(self) -> str:
        with open(self.log, "rb") as log:
            log.seek(self.start)
            return log.read().decode(errors="replace")

    def problems(self, forget: bool = False) -> list[str]:
        """Everything wrong so far; ``forget`` starts afresh after it."""
        found = list(self.logged)
        for page in self.pages:
            if not page.is_closed() and has_app(page):
                settle(page)  # the kernel has handled everything the page sent, and answered
                found += [f"the kernel of {page.url} sent a traceback:\n{e}" for e in kernel_errors(page, forget)]
        found += [f"Voilà's log gained a traceback:\n{e}" for e in tracebacks(self.log_slice())]
        if forget:
            self.logged.clear()
            self.start = self.log.stat().st_size
        return found

    def check(self) -> None:
        """Fail (AssertionError) if anything went wrong; what did stays for the next check."""
        found = self.problems()
        if found:
            raise AssertionError(f"the browser test's pages or server reported errors:\n{problems_report(found)}")

    def forget(self) -> list[str]:
        """What went wrong so far, no longer held against the test (it was provoked on purpose)."""
        return self.problems(forget=True)


def _is_tree(page) -> bool:
    return page is not None and "/voila/render/" not in page.url


@pytest.fixture
def browser_errors(dashboards) -> BrowserErrors:
    return BrowserErrors(dashboards.log, dashboards.log.stat().st_size)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """A browser test that passed still fails if its pages or the server reported an error."""
    result = yield
    errors = item.funcargs.get("browser_errors")
    if errors is not None:
        errors.check()
    return result


@pytest.fixture(scope="package")
def system_token(dashboards) -> str:
    return dashboards.token(SYSTEM_USER)


@pytest.fixture
def page(request, browser, dashboards, offsite_requests, browser_errors, system_token):
    context = browser.new_context(base_url=dashboards.url, viewport={"width": 1280, "height": 900})
    dashboards.sign_in(context, system_token)
    browser_errors.watch(context)
    context.set_default_timeout(ACTION_MS)
    context.set_default_navigation_timeout(APP_READY_MS)

    def refuse(route):
        offsite_requests.append(route.request.url)
        route.abort()

    context.route(OFFSITE, refuse)
    page = context.new_page()
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error}"))
    yield page
    failed = any(
        getattr(request.node, f"report_{when}", None) and getattr(request.node, f"report_{when}").failed
        for when in ("setup", "call")
    )
    name = re.sub(r"[^\w.-]+", "_", request.node.name) + ("-failed" if failed else "")
    try:
        screenshot(page, name)
        if failed:
            (ARTIFACTS / f"{name}.console.txt").write_text("\n".join(console) + "\n")
        _shut_down_kernel(page)
    finally:
        context.close()


def _shut_down_kernel(page) -> None:
    """What the page does on unload (Voilà's sendBeacon), awaited, so kernels do not pile up."""
    page.evaluate("""async () => {
        const manager = window.jupyterapp && window.jupyterapp.widgetManager;
        if (!manager || !manager._kernel) return;
        // crm serve's render page sets the _xsrf cookie the beacon sends back; without one, bring a pair.
        let xsrf = (document.cookie.match(/\\b_xsrf=([^;]*)\\b/) || [])[1];
        if (!xsrf) {
            xsrf = [...crypto.getRandomValues(new Uint8Array(16))].map(b => b.toString(16).padStart(2, "0")).join("");
            document.cookie = `_xsrf=${xsrf}; path=/`;
        }
        const form = new FormData();
        form.append("_xsrf", xsrf);
        const response = await fetch(`${document.body.dataset.baseUrl}api/shutdown/${manager._kernel.id}`,
                                     {method: "POST", body: form});
        return response.status;
    }""")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the test, so ``page`` knows at teardown whether it failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)
