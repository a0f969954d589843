"""Benchmarks replace the data they run on, so they run on a throwaway cluster unless `--url`
names a database: a CRM_DATABASE_URL left set in the shell must not let one wipe a real CRM."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import sqlalchemy as sa

from crm_kernel import CRM
from crm_kernel.db import connect_engine

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"

# The smallest run of benchmarks that load demo data with replace=True (every benchmark gets its
# database from harness.database, tested below; one run end to end is enough for the suite:
# snapshot.py takes as long again).
REPLACING = {
    "board": ["--scales", "0.05", "--repeat", "1", "--moves", "1"],
}


@pytest.fixture
def real_crm(make_database):
    """A CRM someone works in, named by CRM_DATABASE_URL, holding one company."""
    url = make_database("crm_bench_victim")
    engine = connect_engine(url)
    CRM(engine).companies.create(name="Marker Ltd")
    yield url, engine
    engine.dispose()


def company_names(engine: sa.Engine) -> list[str]:
    with engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT name FROM companies ORDER BY name")).scalars())


@pytest.mark.parametrize("name", list(REPLACING))
def test_a_benchmark_leaves_the_crm_in_crm_database_url_alone(name, real_crm):
    url, engine = real_crm
    env = dict(os.environ, CRM_DATABASE_URL=url, PYTHONPATH=str(ROOT))
    proc = subprocess.run(
        [sys.executable, str(BENCHMARKS / f"{name}.py"), *REPLACING[name]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert company_names(engine) == ["Marker Ltd"]


def test_every_benchmark_gets_its_database_from_the_harness():
    for script in sorted(BENCHMARKS.glob("*.py")):
        if script.name != "harness.py":
            text = script.read_text()
            assert "database(args.url" in text and 'CRM_DATABASE_URL")' not in text, script.name


def test_the_harness_starts_a_throwaway_cluster_unless_given_a_url(real_crm, monkeypatch):
    url, _ = real_crm
    monkeypatch.setenv("CRM_DATABASE_URL", url)
    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from harness import database

    with database(None, prefix="crm-bench-test-") as used:
        assert used != url and used.split("@")[1].split("/")[0] != url.split("@")[1].split("/")[0]
        assert os.environ["CRM_DATABASE_URL"] == used  # the library, asked inside, finds the same
        assert CRM.connect().companies.count() == 0
    assert os.environ["CRM_DATABASE_URL"] == url
    with database(url) as used:
        assert used == url


def test_every_app_has_a_ready_marker_its_widgets_draw(monkeypatch):
    """benchmarks/apps.py times each app until its marker shows: one for every app of
    dashboards/, made of classes the widgets' code (Python or JS) really gives."""
    import re

    from crm_kernel.serve import dashboards_dir

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from harness import READY

    assert sorted(READY) == sorted(p.name for p in dashboards_dir().glob("*.ipynb"))
    widgets = "".join(
        p.read_text() for p in (ROOT / "crm_kernel" / "widgets").glob("*.*") if p.suffix in (".py", ".js")
    )
    for name, marker in READY.items():
        for css in re.findall(r"\.([\w-]+)", marker):
            assert css in widgets or css.startswith("mark-"), (name, css)  # mark-*: Vega's own


def test_a_ready_marker_that_never_appears_names_the_app_and_the_marker(monkeypatch):
    from playwright.sync_api import sync_playwright

    monkeypatch.syspath_prepend(str(BENCHMARKS))
    from harness import launch_chromium, wait_ready

    with sync_playwright() as playwright:
        browser = launch_chromium(playwright)
        try:
            page = browser.new_page()
            page.set_content("<div id='rendered_cells'><div class='crm-my-day'>Loading your day</div></div>")
            with pytest.raises(SystemExit) as stopped:
                wait_ready(page, "home.ipynb", ".crm-my-day .crm-kpi", timeout_ms=300)
            assert "home.ipynb" in str(stopped.value) and "'.crm-my-day .crm-kpi'" in str(stopped.value)
            assert "Loading your day" in str(stopped.value)
            page.set_content("<div class='crm-my-day'><div class='crm-kpi'>12</div></div>")
            wait_ready(page, "home.ipynb", ".crm-my-day .crm-kpi", timeout_ms=5000)  # shown: returns
        finally:
            browser.close()
