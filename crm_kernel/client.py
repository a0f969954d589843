"""``CRM``: the object every face starts from.

from crm_kernel import CRM
crm = CRM.connect()          # CRM_DATABASE_URL, else the embedded cluster
crm.deals.move(deal_id, "Won", changes={"close_reason": "Best fit"})
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import sqlalchemy as sa

from .config import Config
from .db import connect_engine, resolve_url
from .db.engine import SETTINGS_OPTION, resolve_app_url
from .db.migrate import check_schema
from .errors import ConfigError, ValidationError
from .ingest import Ingest
from .model import ENTITIES, SYSTEM_USER_ID
from .services import DealService, RecordService, StageService
from .services.activities import ActivityService
from .services.custom_fields import CustomFieldService
from .services.saved_queries import SavedQueryService

if TYPE_CHECKING:  # polars, altair and the analytics come with their first use (see below)
    import polars as pl

    from .analytics.core import Analytics
    from .importer import Importer
    from .query import QueryResult
    from .services.money import MoneyService


class CRM:
    """A connection to one CRM database, acting as one user."""

    def __init__(self, engine: sa.Engine, user: str | None = None, config: Config | None = None):
        self.engine = engine
        self.config = config or Config.from_env()
        self.user_id, self.user_email, self.user_role = self._resolve_user(user)
        # Every transaction on this engine names the acting user (db/engine.py sets it at
        # begin); row-level security (sql/017) filters by it for logins in role crm_app. The
        # option engine shares the pool of the engine it was made from.
        self.engine = engine.execution_options(**{SETTINGS_OPTION: {"crm.user_id": str(self.user_id)}})
        self.users = RecordService(self, "users")
        self.companies = RecordService(self, "companies")
        self.contacts = RecordService(self, "contacts")
        self.stages = StageService(self, "pipeline_stages")
        self.products = RecordService(self, "products")
        self.deals = DealService(self, "deals")
        self.activities = ActivityService(self, "activities")
        self.saved_queries = SavedQueryService(self, "saved_queries")
        self.custom_fields = CustomFieldService(self, "custom_field_definitions")
        self.ingest = Ingest(self)  # mail and calendar into activities: mbox, eml, ics, IMAP (a light facade)
        self.last_query = None  # the QueryResult of the latest query(): SQL, timings, row count

    # Built on first use: both import polars (about 50 MB resident), which an app that shows a
    # board or a form never needs (benchmarks/apps.py measures every app's kernel).
    @cached_property
    def importer(self) -> Importer:
        """CSV/Excel in bulk: ``preview()`` and ``run()`` (polars and DuckDB come with it)."""
        from .importer import Importer

        return Importer(self)

    @cached_property
    def money(self) -> MoneyService:
        """The reporting currency and exchange rates."""
        from .services.money import MoneyService

        return MoneyService(self)

    @cached_property
    def analytics(self) -> Analytics:
        """Pipeline history, waterfall, funnel, forecast (polars)."""
        from .analytics.core import Analytics

        return Analytics(self)

    @classmethod
    def connect(cls, url: str | None = None, *, user: str | None = None, owner: bool = False) -> CRM:
        """Connect to ``url``; else, as apps and notebooks do, ``CRM_APP_DATABASE_URL``, else the
        embedded cluster's service login, else ``CRM_DATABASE_URL`` (see
        :func:`~crm_kernel.db.engine.resolve_app_url`). ``owner=True`` connects as the schema's
        owner instead (``CRM_DATABASE_URL`` or the embedded superuser), which row-level security
        does not bind: for loading demo data and administration.

        ``user`` (else ``CRM_USER``) is the e-mail of the acting user; without one the
        built-in system user acts. A per-user login (`crm users db-credentials`) always acts as
        its own user.
        """
        config = Config.from_env()
        url = url or (resolve_url(config) if owner else resolve_app_url(config))
        engine = connect_engine(url, timezone=config.timezone)
        try:
            return cls(engine, user=user if user is not None else config.user, config=config)
        except BaseException:
            engine.dispose()
            raise

    @property
    def access(self):
        """Roles and teams: ``crm.access.set_role(email, "manager")``, ``add_team``, ``add_member``."""
        from .access.admin import Access

        return Access(self)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> CRM:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        url = self.engine.url.render_as_string(hide_password=True)
        return f"<CRM {url} as {self.user_email}>"

    def _resolve_user(self, email: str | None) -> tuple[uuid.UUID, str, str]:
        """(id, e-mail, role) of the acting user. Read through SECURITY DEFINER functions
        (sql/017): before anyone acts, row-level security shows no user."""
        find = sa.text("SELECT id, email, role, usable FROM crm_find_user(:key)")
        with self.engine.connect() as conn:
            check_schema(conn)
            login_user = conn.execute(sa.text("SELECT crm_login_user()")).scalar()
            if login_user is not None:  # a per-user login acts as its own user, whoever is named
                row = conn.execute(find, {"key": str(login_user)}).one()
                if email and email.lower() != row.email.lower():
                    raise ConfigError(f"this database login acts as {row.email}, not {email}")
                if not row.usable:
                    raise ConfigError(f"CRM user {row.email!r} is inactive or deleted")
                return row.id, row.email, row.role
            if not email:
                row = conn.execute(find, {"key": SYSTEM_USER_ID}).one()
                return row.id, row.email, row.role
            row = conn.execute(find, {"key": email}).first()
        if row is None or not row.usable:
            raise ConfigError(f"CRM user {email!r} does not exist or is inactive; add it with `crm users add {email}`")
        return row.id, row.email, row.role

    # -- queries ------------------------------------------------------------------------------

    def execute(
        self,
        spec,
        backend: str = "postgres",
        snapshot=None,
        *,
        now=None,
        handle=None,
        params: dict | None = None,
        fetch: str = "arrow",
    ) -> QueryResult:
        """Run a query spec; returns a :class:`~crm_kernel.query.QueryResult` (frame, SQL, timings).

        ``backend="duckdb"`` runs on a snapshot: ``snapshot`` is an opened snapshot or a path
        (a snapshot folder or a parent of several); the newest under ``$CRM_HOME`` by default.
        A query runs at most ``CRM_STATEMENT_TIMEOUT`` seconds; ``handle`` (a
        :class:`~crm_kernel.query.RunHandle`) cancels it from another thread. Either raises
        :class:`~crm_kernel.query.QueryCancelled`. ``params`` gives the values of the spec's
        parameters (rules with ``valueSource: "parameter"``). ``fetch="rows"`` keeps a small
        result as Python rows for ``dicts()``, without loading pyarrow or polars.
        """
        from .query.control import timeout_seconds
        from .query.engines import engine

        result = engine(backend).execute(
            self,
            spec,
            snapshot,
            now=now,
            handle=handle,
            params=params,
            fetch=fetch,
            timeout=timeout_seconds(self.config.statement_timeout),
        )
        self.last_query = result
        return result

    def query(
        self, spec, backend: str = "postgres", snapshot=None, *, now=None, handle=None, params: dict | None = None
    ) -> pl.DataFrame:
        """Run a query spec and return its rows as a polars DataFrame (``crm.last_query`` has the rest).

        ``params`` fills the spec's parameters: ``crm.query(spec, params={"min_value": 10000})``.
        """
        return self.execute(spec, backend, snapshot, now=now, handle=handle, params=params).frame

    def search(self, text: str, entities=None, limit: int = 20) -> pl.DataFrame:
        """Find records by a few words, forgiving typos, accents and case; e-mail fragments
        (``smith@acme``, ``@acme.com``) find contacts. A polars DataFrame (``entity``, ``id``,
        ``title``, ``subtitle``, ``score``), best first, deleted records never in it.

        ``entities``: one of ``companies``, ``contacts``, ``deals``, ``activities`` or a list
        (default all); ``limit``: 1 to 200 rows. See :mod:`crm_kernel.services.search`.
        """
        from .services.search import search

        return search(self, text, entities, limit)

    def snapshot(self, out=None, incremental: bool = False, progress: bool = False) -> Path:
        """Copy every table to a Parquet snapshot for DuckDB; returns its folder.

        ``out`` is the folder holding snapshots (default ``$CRM_HOME/snapshots``);
        ``incremental`` copies only rows changed since the newest one there. Open the result
        with ``crm_kernel.snapshot.open()``.
        """
        from .snapshot import default_parent, export

        return export(
            self.engine,
            out if out is not None else default_parent(self.config),
            incremental=incremental,
            progress=progress,
        )

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """One database transaction; integrity and data errors come out as ``ValidationError``
        (an outage as ``DatabaseError``, from the engine)."""
        try:
            with self.engine.begin() as conn:
                yield conn
        except (sa.exc.IntegrityError, sa.exc.DataError) as exc:
            raise _integrity_error(exc) from exc


_SUFFIX = re.compile(r"_(fkey|key|check|not_null|excl)$")
_PROBLEMS = {
    "23505": "another record already has this value",
    "23503": "refers to a record that does not exist",
    "23502": "is required",
    "23514": "is out of the allowed range",
}


def _integrity_error(exc: sa.exc.IntegrityError | sa.exc.DataError) -> ValidationError:
    """Name the field a constraint protects (``deals_company_id_fkey`` -> ``company_id``)."""
    diag = exc.orig.diag
    table = diag.table_name or ""
    fields = {f.name for f in ENTITIES[table].fields} if table in ENTITIES else set()
    name = diag.column_name or _SUFFIX.sub("", diag.constraint_name or "").removeprefix(table + "_")
    if name not in fields:  # e.g. saved_queries_owner_name_key protects "name"
        name = next((part for part in reversed(name.split("_")) if part in fields), "record")
    problem = _PROBLEMS.get(exc.orig.sqlstate, diag.message_primary or str(exc.orig))
    return ValidationError({name: problem}, table or None)
