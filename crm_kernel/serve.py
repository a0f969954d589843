"""``crm serve``: the Voilà dashboards as a local web app.

Plain functions build Voilà's command line and environment, so a test checks them without a
server; :func:`run` then replaces the current process with Voilà. Every notebook in the
dashboards folder is an app, its code hidden; widget JavaScript and fonts come from the
installed packages, never from a CDN.
"""

from __future__ import annotations

import json
import os
import re
import socket
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from urllib.parse import quote

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
KERNEL_CULL_SECONDS = 600  # kernels of closed pages go after this long idle; open pages keep theirs


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
        entries.append(AppEntry(name, meta.get("title") or title or Path(name).stem.replace("_", " ").capitalize(),
                                meta.get("description") or line))
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


def page_config_hook(page_config: dict, base_url: str, settings: dict, log, voila_configuration,
                     notebook_path: str) -> dict:
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
    elsewhere), the crm template on Jupyter's data path and its ``voila.py`` (the landing
    page's hook) on Jupyter's config path."""
    config = config or Config.from_env(environ)
    env = dict(os.environ if environ is None else environ)
    env["CRM_HOME"] = str(config.home)
    env["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(JUPYTER_DATA), env.get("JUPYTER_PATH")) if p)
    env["JUPYTER_CONFIG_PATH"] = os.pathsep.join(p for p in (str(JUPYTER_CONFIG), env.get("JUPYTER_CONFIG_PATH")) if p)
    return env


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
