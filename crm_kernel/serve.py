"""``crm serve``: the Voilà dashboards as a web app for a team.

Plain functions build Voilà's command line and environment, so a test checks them without a
server; :func:`run` then replaces the current process with the server of
:mod:`crm_kernel.voila_server` (Voilà with sign-in and a Host check). Every notebook in the
dashboards folder is an app, its code hidden; widget JavaScript and fonts come from the
installed packages, never from a CDN. Apps open on preheated kernels (``pool`` per app).
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from .config import Config
from .errors import ConfigError

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8866
# The apps in the order a sales rep uses them; any other notebook follows, by name.
APP_ORDER = ("home.ipynb", "pipeline.ipynb", "find.ipynb", "forecast.ipynb", "workbench.ipynb")
FIRST_APP = APP_ORDER[0]
UNLISTED = ("record.ipynb",)  # reached by links from the other apps, never opened on its own
TEMPLATE = "crm"  # jupyter_data/voila/templates/crm: the "lab" template without CDN stylesheets
JUPYTER_DATA = Path(__file__).resolve().parent / "jupyter_data"
JUPYTER_CONFIG = Path(__file__).resolve().parent / "jupyter_config"  # voila.py: the landing page's hook
KERNEL_CULL_SECONDS = 600  # a kernel whose page vanished unannounced goes after this long idle
DEFAULT_POOL = 1  # preheated kernels per app: an app opens without waiting for a kernel to start


def dashboards_dir() -> Path:
    """``dashboards/`` of a source checkout, else the copy packed into the wheel."""
    here = Path(__file__).resolve()
    for candidate in (here.parents[1] / "dashboards", here.parent / "dashboards"):
        if candidate.is_dir():
            return candidate
    raise ConfigError("the dashboards/ folder is missing from this installation; name one with --dir")


def apps(folder: Path) -> list[str]:
    """The apps served from ``folder`` in the order a rep uses them (:data:`APP_ORDER`, then
    any other notebook by name), less those only reached by links (:data:`UNLISTED`, or
    ``"crm": {"listed": false}`` in a notebook's metadata)."""
    folder = Path(folder)
    names = sorted(p.name for p in folder.glob("*.ipynb") if not p.name.startswith("."))
    listed = [name for name in names if name not in UNLISTED and _metadata(folder / name).get("listed", True)]
    rank = {name: at for at, name in enumerate(APP_ORDER)}
    return sorted(listed, key=lambda name: (rank.get(name, len(rank)), name))


@dataclass(frozen=True)
class AppEntry:
    """One line of the landing page: the notebook, its title and what it is for."""

    name: str
    title: str
    line: str


def app_entries(folder: Path) -> list[AppEntry]:
    """:func:`apps` with their titles and lines: ``"crm": {"title", "description"}`` in the
    notebook's metadata, else the first markdown cell's heading and first paragraph."""
    entries = []
    for name in apps(folder):
        meta = _metadata(Path(folder) / name)
        title, line = _first_markdown(Path(folder) / name)
        entries.append(
            AppEntry(
                name,
                meta.get("title") or title or Path(name).stem.replace("_", " ").capitalize(),
                meta.get("description") or line,
            )
        )
    return entries


def _notebook(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # an unreadable notebook is listed by its name; Voilà reports it when opened


def _metadata(path: Path) -> dict:
    meta = _notebook(path).get("metadata", {}).get("crm", {})
    return meta if isinstance(meta, dict) else {}


def _first_markdown(path: Path) -> tuple[str, str]:
    """The heading and the first paragraph of the notebook's first markdown cell."""
    for cell in _notebook(path).get("cells", []):
        if cell.get("cell_type") != "markdown":
            continue
        source = cell.get("source", "")
        text = "".join(source) if isinstance(source, list) else str(source)
        title, paragraphs = "", []
        for block in text.strip().split("\n\n"):
            block = " ".join(block.split())
            if block.startswith("#") and not title:
                title = block.lstrip("#").strip()
            elif block:
                paragraphs.append(block)
        return _plain(title), _plain(paragraphs[0]) if paragraphs else ""
    return "", ""


def _plain(text: str) -> str:
    """Markdown's emphasis, code marks and links as plain words: ``**Run**`` -> ``Run``."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", text)
    return re.sub(r"(\*\*|__|`)", "", text)


def page_config_hook(
    page_config: dict, base_url: str, settings: dict, log, voila_configuration, notebook_path: str
) -> dict:
    """Voilà's page-config hook: a folder's page (the landing page at ``/``) gets ``crmApps``,
    the entries the crm template's tree page lists. Read at every request, so a notebook added
    to the folder appears without a restart."""
    root = Path(settings["contents_manager"].root_dir)
    folder = root / (notebook_path or "")
    if folder.is_dir():
        page_config["crmApps"] = [asdict(entry) for entry in app_entries(folder)]
    return page_config


def address(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The server's address, e.g. ``http://127.0.0.1:8866/``."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def app_url(name: str, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """Where one dashboard opens: ``http://127.0.0.1:8866/voila/render/workbench.ipynb``."""
    return f"{address(host, port)}voila/render/{quote(name)}"


def voila_command(
    folder: Path,
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    open_browser: bool = True,
    tracebacks: bool = False,
    pool: int = DEFAULT_POOL,
    sign_in: bool = True,
    acting_user: str = "",
    allowed_hosts: tuple[str, ...] = (),
    behind_proxy: bool = False,
) -> list[str]:
    """The command line that serves every notebook in ``folder`` with Voilà (the sign-in
    server of :mod:`crm_kernel.voila_server`).

    ``pool`` kernels per app run ahead of any request (0: each page starts its own);
    ``sign_in`` False lets every request act as ``acting_user`` (refused beyond loopback);
    ``allowed_hosts`` are Host header names answered besides the loopback ones; ``behind_proxy``
    believes a reverse proxy's ``X-Forwarded-Proto``/``-For`` (https gives a Secure cookie)."""
    if not sign_in and not is_loopback(host):
        who = acting_user or "the server's user"
        raise ConfigError(
            f"cannot serve on {host} without sign-in: anyone who reaches it would act as "
            f"{who}; drop --no-sign-in or listen on 127.0.0.1"
        )
    if pool < 0:
        raise ConfigError(f"--pool must be 0 or more, not {pool}")
    command = [
        sys.executable,
        "-m",
        "crm_kernel.voila_server",
        str(Path(folder).resolve()),
        f"--Voila.ip={host}",
        f"--Voila.port={port}",
        "--Voila.port_retries=0",  # a busy port is an error, not a silent move to another one
        f"--Voila.open_browser={open_browser}",
        f"--VoilaConfiguration.template={TEMPLATE}",
        "--VoilaConfiguration.strip_sources=True",  # code cells hidden
        f"--VoilaConfiguration.show_tracebacks={tracebacks}",
        f"--MappingKernelManager.cull_idle_timeout={KERNEL_CULL_SECONDS}",
        "--MappingKernelManager.cull_interval=60",
        f"--CrmIdentityProvider.sign_in={'token' if sign_in else 'none'}",
        *(f"--CrmVoila.allowed_hosts={name}" for name in allowed_hosts),
        f"--CrmVoila.behind_proxy={behind_proxy}",
    ]
    if not sign_in:
        command.append(f"--CrmIdentityProvider.acting_user={acting_user}")
    if pool:
        # Each app's kernels run the notebook up to page_crm()/page_query(), which wait for the
        # page that takes the kernel (crm_kernel.apps).
        command += ["--VoilaConfiguration.preheat_kernel=True", f"--VoilaConfiguration.default_pool_size={pool}"]
    return command


def is_loopback(host: str) -> bool:
    """Whether ``host`` is an address only this machine reaches."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def sign_in_url(token: str, base: str | None = None, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT) -> str:
    """The link that signs a browser in: ``http://127.0.0.1:8866/?token=...``; ``base`` is the
    address users reach the server at, when another (a reverse proxy's ``https://crm.example.com/``)."""
    root = base if base else address(host, port)
    return f"{root.rstrip('/')}/?{urlencode({'token': token})}"


def hub_user(environ: dict | None = None) -> str | None:
    """The JupyterHub user whose single-user server runs this (``JUPYTERHUB_USER``), if any."""
    return (os.environ if environ is None else environ).get("JUPYTERHUB_USER") or None


def voila_environment(config: Config | None = None, environ: dict | None = None) -> dict[str, str]:
    """The environment Voilà and its kernels run in: the caller's, with the CRM's home made
    absolute (kernels start in the dashboards folder, where a relative one would point
    elsewhere), the crm template on Jupyter's data path and its ``voila.py`` (the landing
    page's hook) on Jupyter's config path."""
    config = config or Config.from_env(environ)
    env = dict(os.environ if environ is None else environ)
    env["CRM_HOME"] = str(config.home)
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(JUPYTER_DATA), env.get("JUPYTER_PATH")) if p)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(p for p in (str(JUPYTER_CONFIG), env.get("JUPYTER_CONFIG_PATH")) if p)
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
