"""Every face finds the same CRM home without CRM_HOME: the `crm` command from a checkout's
root, a JupyterLab kernel in notebooks/, a Voilà kernel in dashboards/, papermill anywhere."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from jupyter_client.manager import KernelManager

from crm_kernel.config import Config, checkout_root, default_home, make_private_dir
from crm_kernel.db import embedded

from .helpers import scratch_dir

ROOT = Path(__file__).resolve().parents[1]


def clean_env(**extra) -> dict[str, str]:
    """The environment of a user who never set a CRM_* variable."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRM_")}
    return env | extra


def checkout_copy(with_pyproject: bool = True) -> Path:
    """A source checkout in a scratch folder: the package, its migrations, notebooks/ and
    dashboards/ (empty), and pyproject.toml unless it is to look like an installed package."""
    root = scratch_dir("crm-checkout-") / "crm"
    shutil.copytree(ROOT / "crm_kernel", root / "crm_kernel")
    shutil.copytree(ROOT / "sql", root / "sql")
    for folder in ("notebooks", "dashboards", "notebooks/reports"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    if with_pyproject:
        shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    return root


# -- the rule, as a table of layouts -------------------------------------------------------


def test_this_checkout_is_recognised():
    assert checkout_root() == ROOT


def test_nearest_crm_folder_in_the_current_directory_or_its_parents(tmp_path):
    (tmp_path / "project" / ".crm").mkdir(parents=True)
    (tmp_path / "project" / "notebooks" / "reports").mkdir(parents=True)
    for cwd in ("project", "project/notebooks", "project/notebooks/reports"):
        assert default_home(tmp_path / cwd) == tmp_path / "project" / ".crm"


def test_a_crm_file_is_not_a_home(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "a" / ".crm").mkdir()
    (tmp_path / "a" / "b" / ".crm").write_text("not a folder")
    assert default_home(tmp_path / "a" / "b") == tmp_path / "a" / ".crm"


def test_without_a_crm_folder_the_checkouts_root_is_home(tmp_path):
    assert default_home(tmp_path) == ROOT / ".crm"
    assert default_home(ROOT / "notebooks") == ROOT / ".crm"


def test_the_search_stops_at_the_checkouts_root():
    """A `.crm` above the checkout (say ~/.crm) does not capture the checkout's faces."""
    outer = scratch_dir("crm-outer-")
    (outer / ".crm").mkdir()
    root = checkout_copy_into(outer)
    code = "from crm_kernel.config import default_home; print(default_home())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root / "notebooks",
        env=clean_env(PYTHONPATH=str(root)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == str(root / ".crm")
    shutil.rmtree(outer)


def checkout_copy_into(parent: Path) -> Path:
    root = parent / "crm"
    shutil.copytree(ROOT / "crm_kernel", root / "crm_kernel")
    shutil.copy(ROOT / "pyproject.toml", root / "pyproject.toml")
    (root / "notebooks").mkdir()
    return root


def test_an_installed_package_uses_the_users_home():
    """No pyproject.toml beside the package (a wheel in site-packages): ~/.crm."""
    root = checkout_copy(with_pyproject=False)
    user_home = scratch_dir("crm-user-")
    code = "from crm_kernel.config import Config; print(Config.from_env().home)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root / "notebooks",
        env=clean_env(PYTHONPATH=str(root), HOME=str(user_home)),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == str(user_home / ".crm")
    shutil.rmtree(root.parent)
    shutil.rmtree(user_home)


def test_crm_home_wins_when_set(tmp_path):
    assert Config.from_env({"CRM_HOME": str(tmp_path / "elsewhere")}).home == tmp_path / "elsewhere"
    assert Config.from_env({"CRM_HOME": ""}).home == default_home()


# -- private folders -----------------------------------------------------------------------


def test_private_folders_are_created_for_their_owner_only(tmp_path):
    made = make_private_dir(tmp_path / "a" / "b")
    assert stat.S_IMODE((tmp_path / "a").stat().st_mode) == 0o700
    assert stat.S_IMODE(made.stat().st_mode) == 0o700
    passable = make_private_dir(tmp_path / "c", traversable=True)
    assert stat.S_IMODE(passable.stat().st_mode) == 0o711
    (tmp_path / "open").mkdir(mode=0o755)
    (tmp_path / "open").chmod(0o755)
    make_private_dir(tmp_path / "open")
    assert stat.S_IMODE((tmp_path / "open").stat().st_mode) == 0o755  # an existing folder keeps its mode


# -- every face, as a user starts it ---------------------------------------------------------


def run_in_kernel(cwd: Path, env: dict[str, str], code: str) -> str:
    """Start a real Jupyter kernel in ``cwd`` (as JupyterLab and Voilà start one beside the
    notebook), run ``code`` and return what it printed."""
    manager = KernelManager(kernel_name="python3")
    manager.start_kernel(cwd=str(cwd), env=env)
    client = manager.client()
    client.start_channels()
    printed, errors = [], []

    def hook(message):
        content = message["content"]
        if message["msg_type"] == "stream":
            printed.append(content["text"])
        elif message["msg_type"] == "error":
            errors.append("\n".join(content["traceback"]))

    try:
        client.wait_for_ready(timeout=120)
        client.execute_interactive(code, output_hook=hook, timeout=120)
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)
    assert not errors, errors
    return "".join(printed)


def cli(root: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "crm_kernel.cli", *args],
        cwd=cwd or root,
        env=clean_env(PYTHONPATH=str(root)),
        capture_output=True,
        text=True,
    )


@pytest.fixture
def checkout():
    root = checkout_copy()
    yield root
    embedded.for_home(root / ".crm").destroy()
    shutil.rmtree(root.parent, ignore_errors=True)


def test_every_face_finds_the_cluster_the_cli_started(checkout):
    make_private_dir(checkout / ".crm")  # as a snapshot export, run before the first `crm db start`, leaves it
    started = cli(checkout, "db", "start")
    assert started.returncode == 0, started.stderr
    assert f"PostgreSQL is running in {checkout / '.crm' / 'pg'}" in started.stdout
    assert cli(checkout, "db", "migrate").returncode == 0
    home = checkout / ".crm"
    # The home and the cluster are private (as root the postgres user passes through the home).
    assert stat.S_IMODE(home.stat().st_mode) == (0o711 if os.geteuid() == 0 else 0o700)
    assert stat.S_IMODE((home / "pg").stat().st_mode) == 0o700
    assert stat.S_IMODE((home / "pg" / "state.json").stat().st_mode) == 0o600

    code = (
        "from crm_kernel import CRM\nfrom crm_kernel.config import Config\n"
        "crm = CRM.connect()\nprint(Config.from_env().home, crm.stages.count())\n"
    )
    env = clean_env(PYTHONPATH=str(checkout))
    for folder in ("notebooks", "dashboards"):  # JupyterLab's and Voilà's kernels
        assert run_in_kernel(checkout / folder, env, code).split() == [str(home), "6"]
    anywhere = scratch_dir("crm-papermill-cwd-")  # papermill run from an unrelated folder
    assert run_in_kernel(anywhere, env, code).split() == [str(home), "6"]
    status = cli(checkout, "db", "status", cwd=checkout / "notebooks" / "reports")
    assert f"embedded cluster in {home / 'pg'} (running)" in status.stdout
    shutil.rmtree(anywhere)
