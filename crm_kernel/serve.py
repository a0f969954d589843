"""``crm serve``: the Voilà dashboards as a local web app.

Plain functions build Voilà's command line and environment, so a test checks them without a
server; :func:`run` then replaces the current process with Voilà. Every notebook in the
dashboards folder is an app, its code hidden; widget JavaScript and fonts come from the
installed packages, never from a CDN.
"""

from __future__ import annotations

import os
import socket
import sys
from pathlib import Path
from urllib.parse import quote

from .config import Config
from .errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8866
FIRST_APP = "workbench.ipynb"
TEMPLATE = "crm"  # jupyter_data/voila/templates/crm: the "lab" template without CDN stylesheets
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter_data"
KERNEL_CULL_SECONDS = 600  # kernels of closed pages go after this long idle; open pages keep theirs


def dashboards_dir() -> Path:
    """``dashboards/`` of a source checkout, else the copy packed into the wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "dashboards", here.parent / "dashboards"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the dashboards/ folder is missing from this installation; name one with --dir")


def apps(folder: Path) -> list[str]:
    """The notebooks served from ``folder``, the workbench first, then by name."""
    names = sorted(p.name for p in Path(folder).glob("*.ipynb") if not p.name.startswith("."))
    return sorted(names, key=lambda name: name != FIRST_APP)


def address(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The server's address, e.g. ``http://127.0.0.1:8866/``."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def app_url(name: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """Where one dashboard opens: ``http://127.0.0.1:8866/voila/render/workbench.ipynb``."""
    return f"{address(host, port)}voila/render/{quote(name)}"


def voila_command(folder: Path, *, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
                  open_browser: bool = True, tracebacks: bool = False) -> list[str]:
    """The command line that serves every notebook in ``folder`` with Voilà."""
    return [
        sys.executable, "-m", "voila", str(Path(folder).resolve()),
        f"--Voila.ip={host}",
        f"--Voila.port={port}",
        "--Voila.port_retries=0",  # a busy port is an error, not a silent move to another one
        f"--Voila.open_browser={open_browser}",
        f"--VoilaConfiguration.template={TEMPLATE}",
        "--VoilaConfiguration.strip_sources=True",  # code cells hidden
        f"--VoilaConfiguration.show_tracebacks={tracebacks}",
        f"--MappingKernelManager.cull_idle_timeout={KERNEL_CULL_SECONDS}",
        "--MappingKernelManager.cull_interval=60",
    ]


def voila_environment(config: Config | None = None, environ: dict | None = None) -> dict[str, str]:
    """The environment Voilà and its kernels run in: the caller's, with the CRM's home made
    absolute (kernels start in the dashboards folder, where a relative one would point
    elsewhere) and the crm template on Jupyter's data path."""
    config = config or Config.from_env(environ)
    env = dict(os.environ if environ is None else environ)
    env["CRM_HOME"] = str(config.home)
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(JUPYTER_DATA), env.get("JUPYTER_PATH")) if p)
    for name, value in kernel_environment().items():
        env.setdefault(name, value)  # the caller's own setting wins
    return env


def kernel_environment() -> dict[str, str]:
    """Settings for the app kernels (Voilà passes its environment on to them).

    glibc gives every thread that allocates its own malloc arena; a workbench runs each query
    on a worker thread and a board listens on one. Two arenas kept a workbench kernel 8 MB
    smaller after five runs (274 -> 266 MB resident; benchmarks/apps.py measures the apps)."""
    return {"MALLOC_ARENA_MAX": "2"}


def check_port(host: str, port: int) -> None:
    """Refuse a port another program listens on, with a message that says what to do."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as s:
        try:
            s.bind((host, port))
        except OSError as exc:
            raise ConfigError(f"cannot serve on {host}:{port} ({exc.strerror}); choose another with --port") from exc


def run(command: list[str], env: dict[str, str]) -> None:
    """Become the Voilà server (never returns): Ctrl-C and signals reach Voilà itself."""
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(command[0], command, env)
