"""What an app's kernel imports: every open page holds its kernel's modules in memory, so an app
imports only what it uses (pandas alone is about 120 MB resident; ``benchmarks/apps.py``
measures the kernels).

Each case imports in a fresh interpreter, as a new kernel does, and lists the heavy modules it
ends up with."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

# Libraries no app needs until it charts, exports, snapshots or runs a report.
HEAVY = ["pandas", "pyarrow", "duckdb", "duckdb_engine", "altair", "vegafusion", "jinja2", "papermill",
         "ipydatagrid", "bqplot", "numpy", "crm_kernel.analytics", "crm_kernel.reports",
         "crm_kernel.snapshot", "crm_kernel.demo", "crm_kernel.importer"]


def loaded_after(code: str) -> set[str]:
    """The modules of ``HEAVY`` (and polars) that running ``code`` in a fresh interpreter loads."""
    probe = f"{code}\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    proc = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    modules = set(json.loads(proc.stdout.splitlines()[-1]))
    return {name for name in [*HEAVY, "polars"] if name in modules}


@pytest.mark.parametrize("code", [
    "import crm_kernel",
    "from crm_kernel import CRM",
    "from crm_kernel.apps import page_crm, page_query",
    "import crm_kernel.widgets",
])
def test_connecting_imports_no_heavy_library(code):
    assert loaded_after(code) == set()


def test_the_pipeline_app_imports_no_heavy_library():
    assert loaded_after("from crm_kernel.apps import page_crm\n"
                        "from crm_kernel.widgets.pipeline_board import PipelineBoard") == set()


def test_the_workbench_app_imports_only_what_its_page_shows():
    """The workbench opens on a blank query: results (polars) and the grid (ipydatagrid,
    pandas) wait for the first Run, DuckDB for the first query on a snapshot."""
    assert loaded_after("from crm_kernel.apps import page_crm\nfrom crm_kernel.widgets import Workbench") == set()


def test_the_heavy_libraries_still_come_when_asked_for():
    """The lazy names resolve: what the probe above would miss if a name went wrong."""
    assert {"polars", "crm_kernel.analytics"} <= loaded_after(
        "import crm_kernel, crm_kernel.client as c\nc.Analytics, c.pl\nfrom crm_kernel.widgets import ResultGrid")
