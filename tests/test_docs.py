"""The README and environment.yml stay true to the code."""

import re
import tomllib
from pathlib import Path

import pytest
import yaml

from crm_kernel import cli
from crm_kernel.config import SETTINGS

from .test_cli import every_command

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_opens_with_the_two_commands():
    first_block = README.split("```")[1]
    assert "make demo" in first_block and "make test" in first_block


@pytest.mark.parametrize("setting", SETTINGS, ids=lambda s: s.env)
def test_every_setting_is_documented(setting):
    assert f"| `{setting.env}` |" in README


def _leaf_commands():
    for command in every_command():
        node = cli.main
        for name in command:
            node = node.commands[name]
        if not hasattr(node, "commands"):  # groups are covered by their subcommands
            yield command


@pytest.mark.parametrize("command", list(_leaf_commands()), ids=" ".join)
def test_every_command_is_documented(command):
    assert "crm " + " ".join(command) in README


CONDA_NAMES = {"duckdb": "python-duckdb"}


def _name(requirement: str) -> str:
    return re.split(r"[\[<>=!~ ]", requirement, maxsplit=1)[0].lower()


def _floor(requirement: str) -> str:
    """The version constraint: ``psycopg[binary]>=3.2`` -> ``>=3.2``."""
    return re.sub(r"^[A-Za-z0-9_.-]+(\[[^]]*\])?", "", requirement).replace(" ", "")


def test_environment_yml_lists_the_same_dependencies():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {
        CONDA_NAMES.get(_name(r), _name(r)): _floor(r)
        for r in project["dependencies"] + project["optional-dependencies"]["dev"]
    }
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    listed = {_name(d): _floor(d) for d in env["dependencies"] if isinstance(d, str)}
    assert set(wanted) <= set(listed)
    assert {name: listed[name] for name in wanted} == wanted  # the same minimum versions too
