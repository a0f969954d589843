"""Settings from the environment.

Settings are data: :data:`SETTINGS` lists every variable the library reads, with its
default and meaning; the README's table is checked against it by a test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple


class Setting(NamedTuple):
    env: str
    default: str | None
    help: str


SETTINGS = (
    Setting("CRM_DATABASE_URL", None, "PostgreSQL URL; when unset the embedded cluster under CRM_HOME is used"),
    Setting("CRM_HOME", ".crm", "folder for the embedded cluster and snapshots"),
    Setting("CRM_USER", None, "e-mail of the acting user; when unset the built-in system user acts"),
    Setting("CRM_TIMEZONE", "UTC", "time zone for relative dates and date truncation"),
    Setting("CRM_SMTP_URL", None, "SMTP server that mails reports: smtp://[user:password@]host[:port]"),
)


@dataclass(frozen=True)
class Config:
    database_url: str | None
    home: Path
    user: str | None
    timezone: str
    smtp_url: str | None = None

    @classmethod
    def from_env(cls, environ: os._Environ | dict | None = None) -> Config:
        env = os.environ if environ is None else environ
        values = {s.env: (env.get(s.env) or s.default) for s in SETTINGS}
        return cls(
            database_url=values["CRM_DATABASE_URL"],
            home=Path(values["CRM_HOME"]).expanduser().absolute(),
            user=values["CRM_USER"],
            timezone=values["CRM_TIMEZONE"],
            smtp_url=values["CRM_SMTP_URL"],
        )
