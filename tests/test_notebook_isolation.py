"""Notebooks run by nbval neither see nor change what the tests' database holds.

A small session of its own runs, in this order: a test that writes to the tests' database, two
notebooks that each expect an empty CRM (and write to theirs), and a test that expects the
tests' database and CRM_HOME to hold only what the first test wrote. It goes through this
checkout's top-level conftest.py (loaded with ``-p conftest``), exactly as ``make test`` does.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parent.parent

WRITER = """
import os
from pathlib import Path

from crm_kernel import CRM


def test_a_test_writes_to_its_database():
    with CRM.connect() as crm:
        crm.companies.create(name="Written by a test")
    Path(os.environ["CRM_HOME"], "written-by-a-test").touch()
"""

READER = """
import os
from pathlib import Path

import sqlalchemy as sa

from crm_kernel import CRM


def test_notebooks_left_the_tests_database_alone():
    with CRM.connect() as crm, crm.engine.connect() as conn:
        names = conn.execute(sa.text("SELECT name FROM companies ORDER BY name")).scalars().all()
    assert names == ["Written by a test"]
    assert sorted(p.name for p in Path(os.environ["CRM_HOME"]).iterdir() if p.name.startswith("written")) == [
        "written-by-a-test"]
"""

NOTEBOOK_CELLS = [
    """import os
from pathlib import Path

import sqlalchemy as sa

from crm_kernel import CRM

crm = CRM.connect()
with crm.engine.connect() as conn:
    names = conn.execute(sa.text("SELECT name FROM companies")).scalars().all()
assert names == [], names
assert not any(Path(os.environ["CRM_HOME"]).glob("written-by-*")), os.environ["CRM_HOME"]""",
    """crm.companies.create(name="Written by a notebook")
Path(os.environ["CRM_HOME"], "written-by-a-notebook").touch()""",
]


def test_notebooks_and_tests_do_not_share_a_database(tmp_path):
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    (tmp_path / "test_a_writer.py").write_text(WRITER)
    (tmp_path / "test_z_reader.py").write_text(READER)
    for name in ("b_first.ipynb", "c_second.ipynb"):
        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in NOTEBOOK_CELLS])
        nbformat.write(notebook, tmp_path / name)
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")])
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "conftest",
            "-p",
            "no:cacheprovider",
            "--nbval-lax",
            "--nbval-current-env",
            "-c",
            str(tmp_path / "pytest.ini"),
            "--rootdir",
            str(tmp_path),
            "test_a_writer.py",
            "b_first.ipynb",
            "c_second.ipynb",
            "test_z_reader.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert "6 passed" in run.stdout, run.stdout[-2000:]
