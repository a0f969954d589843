"""The notebooks the suite runs check what they show: nbval runs them with --nbval-lax, which
compares no outputs, so a notebook passes only through its own asserts. An expected error that
is not raised must fail the suite."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted([*ROOT.glob("notebooks/*.ipynb"), *ROOT.glob("dashboards/*.ipynb")])


def code_cells(path: Path) -> list[str]:
    return ["".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def _raises_assertion(body: list[ast.stmt]) -> bool:
    return any(isinstance(node, ast.Raise) and "AssertionError" in ast.unparse(node) for node in body)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: str(p.relative_to(ROOT)))
def test_every_notebook_asserts_what_it_shows(path):
    trees = [ast.parse(source) for source in code_cells(path)]
    assert any(isinstance(node, ast.Assert) for tree in trees for node in ast.walk(tree)), path.name
    for tree in trees:
        for node in ast.walk(tree):
            if isinstance(node, ast.Try) and node.handlers:
                # try/except that only prints passes when the error never comes
                assert _raises_assertion(node.orelse), (
                    f"{path.name}: {ast.unparse(node).splitlines()[0]} ... needs else: raise AssertionError"
                )


# Lines of notebooks/getting_started.ipynb that must raise, altered so that they do not.
NOT_RAISED = {
    "validation": (
        'crm.deals.move(deal["id"], "Lost")\n',
        'crm.deals.move(deal["id"], "Lost", changes={"close_reason": "Too early"})\n',
        "a move to Lost without a close reason must be refused",
    ),
    "conflict": (
        "expected_version=1)\n",
        'expected_version=deal["version"])\n',
        "an update based on version 1 must be refused",
    ),
}


def run_under_nbval(notebook: Path, database_url: str) -> subprocess.CompletedProcess:
    """Run ``notebook`` as the suite does (nbval, --nbval-lax), in a folder of its own."""
    env = dict(os.environ, CRM_DATABASE_URL=database_url, PYTHONPATH=str(ROOT))
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "--nbval-lax",
            "--nbval-current-env",
            "-p",
            "no:cacheprovider",
            "-q",
            notebook.name,
        ],
        cwd=notebook.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.parametrize("case", list(NOT_RAISED))
def test_the_suite_fails_when_an_expected_error_is_not_raised(case, make_database, tmp_path):
    line, altered, message = NOT_RAISED[case]
    text = (ROOT / "notebooks" / "getting_started.ipynb").read_text()
    assert text.count(json.dumps(line)[1:-1]) == 1, "the notebook no longer has this line"
    notebook = tmp_path / "getting_started.ipynb"
    notebook.write_text(text.replace(json.dumps(line)[1:-1], json.dumps(altered)[1:-1]))
    result = run_under_nbval(notebook, make_database(f"crm_nb_{case}"))
    assert result.returncode == 1, result.stdout[-3000:]
    assert "AssertionError" in result.stdout and message in result.stdout


@pytest.mark.parametrize("path", sorted((ROOT / "dashboards").glob("*.ipynb")), ids=lambda p: p.name)
def test_every_app_has_the_command_palette(path):
    code = "\n".join("".join(c["source"]) for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code")
    assert "display(CommandPalette(crm))" in code, f"{path.name} lacks the Ctrl+K palette"
