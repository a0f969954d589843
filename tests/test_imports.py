"""What an app's kernel imports: every open page holds its kernel's modules in memory, so an app
imports only what it uses (pandas alone is about 120 MB resident; ``benchmarks/apps.py``
measures the kernels).

Each case runs in a fresh interpreter, as a new kernel does, and lists the heavy modules it
ends up with; the apps' cases run the app's own code (the first code cell of its notebook) on
a database."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from crm_kernel import demo as demo_data
from crm_kernel.db import connect_engine

ROOT = Path(__file__).resolve().parents[1]
DASHBOARDS = ROOT / "dashboards"

# Libraries no app needs until it charts, exports, runs a query on a snapshot or shows a grid.
HEAVY = [
    "pandas",
    "pyarrow",
    "duckdb",
    "duckdb_engine",
    "altair",
    "vegafusion",
    "jinja2",
    "papermill",
    "ipydatagrid",
    "bqplot",
    "crm_kernel.analytics",
    "crm_kernel.reports",
    "crm_kernel.snapshot",
    "crm_kernel.demo",
]
POLARS = "polars"  # query results as frames: neither the board nor a workbench nobody has run needs them


def loaded_after(code: str, url: str | None = None) -> set[str]:
    """The modules of ``HEAVY`` (and polars) that running ``code`` in a fresh interpreter loads."""
    # ``display`` is a builtin in a kernel; IPython.display is loaded in every kernel anyway.
    probe = (
        f"from IPython.display import display\n{code}\nimport json, os, sys\n"
        "print(json.dumps(sorted(sys.modules)), flush=True)\nos._exit(0)"
    )
    env = {"PYTHONPATH": str(ROOT), "PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    if url:
        env["CRM_DATABASE_URL"] = url
    proc = subprocess.run(
        [sys.executable, "-c", probe], cwd=DASHBOARDS, capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = set(json.loads(proc.stdout.splitlines()[-1]))
    return {name for name in [*HEAVY, POLARS] if name in modules}


def app_code(name: str) -> str:
    """The first code cell of ``dashboards/<name>``: what builds the app."""
    cells = json.loads((DASHBOARDS / name).read_text())["cells"]
    return next("".join(c["source"]) for c in cells if c["cell_type"] == "code")


@pytest.fixture
def demo_url(make_database) -> str:
    url = make_database("crm_imports")
    engine = connect_engine(url)
    demo_data.load(engine, scale=0.05, seed=1, today=dt.date(2026, 1, 15), replace=True)
    engine.dispose()
    return url


@pytest.mark.parametrize(
    "code",
    [
        "import crm_kernel",
        "from crm_kernel import CRM",
        "from crm_kernel.apps import page_crm, page_query",
        "import crm_kernel.widgets",
        "from crm_kernel.widgets.pipeline_board import PipelineBoard",
        "from crm_kernel.widgets import Workbench",
    ],
)
def test_importing_what_an_app_imports_loads_no_heavy_library(code):
    assert loaded_after(code) == set()


def test_the_pipeline_app_loads_no_heavy_library_nor_polars(demo_url):
    code = app_code("pipeline.ipynb")
    assert "PipelineBoard(crm)" in code  # the app's code, not an empty cell
    assert loaded_after(code, demo_url) == set()


def test_the_forecast_app_draws_its_charts_without_altair(demo_url):
    """Its charts are Vega-Lite specs built as dicts and drawn by a widget of ours: altair (and
    jinja2, which comes with it) stay for the notebooks. The analytics read PostgreSQL through
    ADBC as Arrow into polars; pandas comes with ADBC's DBAPI module, which imports
    pyarrow.dataset, which makes a pyarrow scalar as it loads, and pyarrow looks for pandas
    (imports it) on the first scalar made."""
    code = app_code("forecast.ipynb")
    assert "ForecastPage(crm)" in code
    assert loaded_after(code, demo_url) == {POLARS, "crm_kernel.analytics", "pyarrow", "pandas"}
    # the case would see altair were the page to draw with it
    assert {"altair", "jinja2"} <= loaded_after(f"{code}\nfrom crm_kernel.analytics import charts", demo_url)


def test_the_workbench_app_loads_no_heavy_library_until_a_query_runs(demo_url):
    """The workbench opens on a blank query: results (polars) and the grid (ipydatagrid,
    pandas) wait for the first Run, DuckDB for the first query on a snapshot."""
    code = app_code("workbench.ipynb")
    assert "Workbench(crm)" in code
    assert loaded_after(code, demo_url) == set()
    ran = loaded_after(f"{code}\nassert workbench.run().rows > 0", demo_url)
    assert {POLARS, "pandas", "ipydatagrid"} <= ran and "duckdb" not in ran


def test_what_is_loaded_on_first_use_still_resolves():
    """The lazy names: a wrong one would go unseen by the cases above."""
    assert {"duckdb", "duckdb_engine", "crm_kernel.snapshot"} <= loaded_after(
        "from crm_kernel.query import DuckDBCompiler\nassert DuckDBCompiler.name == 'duckdb'"
    )
    assert (
        loaded_after(
            "from crm_kernel.widgets import FieldCatalog, PipelineBoard, QueryBuilder, ResultGrid, Source, Workbench"
        )
        == set()
    )
    assert (
        loaded_after(
            "import crm_kernel.widgets as w\ntry:\n    w.Nothing\nexcept AttributeError:\n    pass\n"
            "else:\n    raise SystemExit('no AttributeError')"
        )
        == set()
    )


def test_a_face_catches_the_errors_of_loaded_engines_only():
    """``engines.loaded()`` (what the workbench catches) names no engine it would have to import."""
    code = (
        "from crm_kernel.query import engines\n"
        "assert 'duckdb' not in [e.name for e in engines.loaded()]\n"
        "duck = engines.engine('duckdb')\n"
        "import duckdb\n"
        "assert duck in engines.loaded() and duckdb.Error in duck.errors\n"
    )
    assert "duckdb" in loaded_after(code)
