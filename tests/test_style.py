"""The tree stays as `make format` leaves it: one formatter, so a diff shows what changed."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PATHS = ["crm_kernel", "tests", "benchmarks", "conftest.py"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["check", "format"])
def test_ruff_is_clean(command):
    ruff = Path(sys.executable).with_name("ruff")
    done = subprocess.run([str(ruff), *command, *PATHS], cwd=ROOT, capture_output=True, text=True)
    assert done.returncode == 0, f"run `make format` (or `ruff {' '.join(command)}`):\n{done.stdout}{done.stderr}"
