"""Settings from the environment.

Settings are data: :data:`SETTINGS` lists every variable the library reads, with its
default and meaning; the README's table is checked against it by a test.

The CRM's home (``CRM_HOME``) must be the same folder for every face: the ``crm`` command run
from a checkout's root, a JupyterLab kernel (started in ``notebooks/``), a Voilà kernel (in
``dashboards/``) and papermill (anywhere). :func:`default_home` finds it without the variable.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple


class Setting(NamedTuple):
    env: str
    default: str | None
    help: str


SETTINGS = (
    Setting("CRM_DATABASE_URL", None, "PostgreSQL URL; when unset the embedded cluster under CRM_HOME is used"),
    Setting(
        "CRM_APP_DATABASE_URL",
        None,
        "PostgreSQL URL of a login in role crm_app (bound by row-level "
        "security) that apps and notebooks use; when unset, the embedded cluster's service login, else "
        "CRM_DATABASE_URL",
    ),
    Setting(
        "CRM_HOME",
        None,
        "folder for the embedded cluster and snapshots; when unset, the nearest .crm "
        "folder in the current directory or its parents, else .crm in the source checkout's root, "
        "else ~/.crm",
    ),
    Setting("CRM_USER", None, "e-mail of the acting user; when unset the built-in system user acts"),
    Setting("CRM_TIMEZONE", "UTC", "time zone for relative dates and date truncation"),
    Setting("CRM_STATEMENT_TIMEOUT", "300", "seconds a query may run before it is stopped; 0: no limit"),
    Setting("CRM_SMTP_URL", None, "SMTP server that mails reports: smtp://[user:password@]host[:port]"),
    Setting("CRM_IMAP_PASSWORD", None, "password for `crm ingest imap` (else it is asked for; never an option)"),
)


@dataclass(frozen=True)
class Config:
    database_url: str | None
    home: Path
    user: str | None
    timezone: str
    statement_timeout: str = "300"  # read by crm_kernel.query.control.timeout_seconds
    smtp_url: str | None = None
    app_database_url: str | None = None

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> Config:
        env = os.environ if environ is None else environ
        values = {s.env: (env.get(s.env) or s.default) for s in SETTINGS}
        return cls(
            database_url=values["CRM_DATABASE_URL"],
            home=Path(values["CRM_HOME"]).expanduser().absolute() if values["CRM_HOME"] else default_home(),
            user=values["CRM_USER"],
            timezone=values["CRM_TIMEZONE"],
            statement_timeout=values["CRM_STATEMENT_TIMEOUT"],
            smtp_url=values["CRM_SMTP_URL"],
            app_database_url=values["CRM_APP_DATABASE_URL"],
        )


HOME_NAME = ".crm"


def checkout_root() -> Path | None:
    """The source checkout this package runs from (the folder holding its pyproject.toml), or
    None for an installed package."""
    root = Path(__file__).resolve().parents[1]
    project = root / "pyproject.toml"
    try:
        declared = re.search(r'^name\s*=\s*"([^"]+)"', project.read_text(), re.MULTILINE)
    except OSError:
        return None
    return root if declared and declared.group(1) == "crm_kernel" else None


def default_home(cwd: Path | None = None) -> Path:
    """The home when ``CRM_HOME`` is unset, the same from any folder a face starts in.

    1. The nearest ``.crm`` folder in ``cwd`` or its parents (as git finds ``.git``); the search
       stops at the checkout's root, so a checkout keeps its own home even under a ``~/.crm``.
    2. Else ``.crm`` in the checkout's root, when the package runs from a source checkout.
    3. Else ``~/.crm``.
    """
    checkout = checkout_root()
    here = Path(cwd or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        if (folder / HOME_NAME).is_dir():
            return folder / HOME_NAME
        if folder == checkout:
            break
    if checkout is not None:
        return checkout / HOME_NAME
    return Path.home() / HOME_NAME


def make_private_dir(path: Path, *, traversable: bool = False) -> Path:
    """Create ``path`` and any missing parents readable only by their owner (0700).

    ``traversable`` (0711) lets other users pass through without listing: a root-owned CRM home
    holding a cluster that the ``postgres`` system user must reach. Folders that exist already
    keep their mode."""
    path = Path(path)
    mode = 0o711 if traversable else 0o700
    missing = [p for p in (path, *path.parents) if not p.exists()]
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=0o700)  # never wider than asked, whatever the umask, even briefly
        except FileExistsError:
            if not folder.is_dir():
                raise
            continue  # made meanwhile by someone else: theirs to set
        folder.chmod(mode)
    return path
