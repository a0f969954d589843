"""`crm serve` without a server: the Voilà command line, its environment and the CLI's checks.
(The browser tests run the real thing.)"""

import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from crm_kernel import cli
from crm_kernel import serve as serving
from crm_kernel.config import Config
from crm_kernel.db.embedded import free_port
from tests.helpers import scratch_dir


def test_voila_serves_the_folder_on_loopback_with_code_hidden(tmp_path):
    command = serving.voila_command(tmp_path, port=9001, open_browser=False)
    assert command[1:4] == ["-m", "voila", str(tmp_path.resolve())]
    for option in ("--Voila.ip=127.0.0.1", "--Voila.port=9001", "--Voila.port_retries=0",
                   "--Voila.open_browser=False", "--VoilaConfiguration.template=crm",
                   "--VoilaConfiguration.strip_sources=True", "--VoilaConfiguration.show_tracebacks=False"):
        assert option in command


def test_defaults_are_the_documented_address():
    assert serving.address() == "http://127.0.0.1:8866/"
    assert serving.app_url("workbench.ipynb") == "http://127.0.0.1:8866/voila/render/workbench.ipynb"
    assert serving.address("::1", 80) == "http://[::1]:80/"


def test_the_workbench_is_the_first_app(tmp_path):
    for name in ("activity.ipynb", "workbench.ipynb", ".draft.ipynb", "notes.md"):
        (tmp_path / name).write_text("{}")
    assert serving.apps(tmp_path) == ["workbench.ipynb", "activity.ipynb"]
    assert serving.apps(serving.dashboards_dir())[0] == "workbench.ipynb"


def test_kernels_find_the_crm_home_and_voila_the_template():
    env = serving.voila_environment(Config.from_env({"CRM_HOME": "rel/home"}),
                                    {"CRM_HOME": "rel/home", "JUPYTER_PATH": "/elsewhere"})
    assert Path(env["CRM_HOME"]).is_absolute() and env["CRM_HOME"].endswith("rel/home")
    first, rest = env["JUPYTER_PATH"].split(":", 1)
    assert rest == "/elsewhere"
    conf = Path(first) / "voila" / "templates" / serving.TEMPLATE / "conf.json"
    assert json.loads(conf.read_text())["base_template"] == "lab"


def test_kernels_keep_two_malloc_arenas_unless_told_otherwise():
    assert serving.voila_environment(Config.from_env({}), {})["MALLOC_ARENA_MAX"] == "2"
    assert serving.voila_environment(Config.from_env({}), {"MALLOC_ARENA_MAX": "4"})["MALLOC_ARENA_MAX"] == "4"


def test_the_template_fetches_nothing_from_a_cdn():
    folder = serving.JUPYTER_DATA / "voila" / "templates" / serving.TEMPLATE
    for path in folder.iterdir():
        assert "https://" not in path.read_text(), path.name


def test_the_workbench_dashboard_needs_no_editing():
    notebook = json.loads((serving.dashboards_dir() / "workbench.ipynb").read_text())
    cells = ["".join(c["source"]) for c in notebook["cells"]]
    assert notebook["cells"][0]["cell_type"] == "markdown" and cells[0].startswith("# ")
    code = "\n".join(cells[1:])
    assert "page_crm()" in code and "Workbench(crm)" in code


@pytest.fixture
def became(monkeypatch):
    """What `crm serve` would have run instead of becoming Voilà."""
    calls = []
    monkeypatch.setattr(serving, "run", lambda command, env: calls.append((command, env)))
    return calls


def crm(*args, env=None):
    return CliRunner().invoke(cli.main, ["serve", *args], env=env, catch_exceptions=False)


def test_crm_serve_prints_the_address_and_becomes_voila(database_url, became):
    port = free_port()
    result = crm("--port", str(port), "--no-browser")
    assert result.exit_code == 0, result.output
    assert f"at http://127.0.0.1:{port}/" in result.output
    assert f"http://127.0.0.1:{port}/voila/render/workbench.ipynb" in result.output
    [(command, env)] = became
    assert f"--Voila.port={port}" in command and "--Voila.open_browser=False" in command
    assert command[3] == str(serving.dashboards_dir())
    assert env["CRM_DATABASE_URL"] == database_url


def test_crm_serve_refuses_a_busy_port(database_url, became):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        result = crm("--port", str(taken.getsockname()[1]))
    assert result.exit_code == 1
    assert "choose another with --port" in result.output
    assert became == []


def test_crm_serve_without_a_database_says_how_to_start_one(became):
    home = scratch_dir("crm-serve-home-")
    result = crm("--no-browser", env={"CRM_DATABASE_URL": None, "CRM_HOME": str(home)})
    assert result.exit_code == 1
    assert "crm db start" in result.output
    assert became == []
