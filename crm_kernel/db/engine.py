"""Engines: one place that turns settings into a SQLAlchemy engine on psycopg 3."""

from __future__ import annotations

import json
import re
import zoneinfo
from decimal import Decimal

import psycopg
import sqlalchemy as sa

from ..config import Config
from ..errors import AccessDeniedError, ConfigError, DatabaseError
from . import embedded


def sqlalchemy_url(url: str) -> str:
    """Accept the URL forms people paste (``postgres://``, ``postgresql://``) and pick psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def libpq_url(url: str) -> str:
    """The same URL without SQLAlchemy's driver suffix, for psql, psycopg and ADBC."""
    return url.replace("postgresql+psycopg://", "postgresql://", 1)


def resolve_url(config: Config | None = None) -> str:
    """CRM_DATABASE_URL when set, else the running embedded cluster's URL."""
    config = config or Config.from_env()
    if config.database_url:
        return config.database_url
    cluster = embedded.for_home(config.home)
    if not cluster.initialised or not cluster.port:
        raise DatabaseError(
            f"no database: CRM_DATABASE_URL is unset and there is no embedded cluster in {cluster.root}; "
            "run `crm db start` (or `make db`)"
        )
    return cluster.url()


def resolve_app_url(config: Config | None = None) -> str:
    """The URL apps and notebooks use: ``CRM_APP_DATABASE_URL``, else the embedded cluster's
    service login (made by `crm db start`/`crm db migrate`, bound by row-level security), else
    :func:`resolve_url` (the schema's owner, which no policy binds)."""
    config = config or Config.from_env()
    if config.app_database_url:
        return config.app_database_url
    if not config.database_url:
        app_url = embedded.for_home(config.home).app_url()
        if app_url:
            return app_url
    return resolve_url(config)


SETTINGS_OPTION = "crm_settings"  # execution option: {"crm.user_id": "<uuid>"} applied per transaction
_SET_CONFIG = "SELECT set_config(name, value, {local}) FROM unnest(%s::text[], %s::text[]) AS s(name, value)"


def apply_settings(cursor, settings: dict[str, str], *, local: bool) -> None:
    """``set_config`` every entry of ``settings`` on a DBAPI cursor (psycopg or ADBC): for the
    transaction (``local``) or the session (a connection of its own, such as an ADBC worker)."""
    if not settings:
        return
    pairs = [(str(k), str(v)) for k, v in settings.items()]
    scope = "true" if local else "false"
    if type(cursor).__module__.startswith("adbc"):  # no array parameters there: one pair of $n each
        calls = ", ".join(f"set_config(${2 * i + 1}, ${2 * i + 2}, {scope})" for i in range(len(pairs)))
        cursor.execute(f"SELECT {calls}", [part for pair in pairs for part in pair])
        cursor.fetchall()
        return
    names, values = zip(*pairs, strict=True)
    cursor.execute(_SET_CONFIG.format(local=scope), [list(names), list(values)])


def _begin(conn: sa.Connection) -> None:
    """Every transaction starts with the engine's ``crm_settings`` (the acting user), set with
    ``set_config(..., true)`` so they end with it and never leak to the pool's next user."""
    settings = conn.get_execution_options().get(SETTINGS_OPTION)
    if settings:
        cursor = conn.connection.dbapi_connection.cursor()
        try:
            apply_settings(cursor, settings, local=True)
        finally:
            cursor.close()


def connect_engine(url: str, timezone: str = "UTC") -> sa.Engine:
    """An engine whose sessions use ``timezone`` and fail fast when the server is down.

    Every lost connection or unreachable server, on any path that uses the engine (services,
    queries, widgets), comes out as :class:`DatabaseError`; the pool replaces dead connections,
    so the same engine works again once the server is back.
    """
    engine = sa.create_engine(
        sqlalchemy_url(url),
        # Query specs bind their values; a custom plan per execution keeps date ranges and
        # value filters as well planned as hand-written SQL with literals.
        connect_args={
            "options": f"-c timezone={checked_timezone(timezone)} -c plan_cache_mode=force_custom_plan",
            "connect_timeout": 10,
        },
        pool_pre_ping=True,
        json_serializer=dumps_json,
    )
    sa.event.listen(engine, "handle_error", _database_errors(url))
    sa.event.listen(engine, "begin", _begin)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except DatabaseError:
        engine.dispose()
        raise
    return engine


# Zone names are letters, digits and _ + - /; anything else could smuggle other libpq options.
_ZONE_NAME = re.compile(r"^[A-Za-z0-9_+\-]+(/[A-Za-z0-9_+\-]+)*$")


def checked_timezone(name: str) -> str:
    """``name`` when it is a known IANA time zone, else ``ConfigError`` naming CRM_TIMEZONE."""
    problem = None
    if not isinstance(name, str) or not _ZONE_NAME.match(name):
        problem = "is not a time zone name"
    else:
        try:
            zoneinfo.ZoneInfo(name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            problem = "is not a known time zone"
    if problem:
        raise ConfigError(f"CRM_TIMEZONE={name!r} {problem}; use an IANA name such as UTC or Europe/Paris")
    return name


# Connection failures (class 08), the server shutting down (57P01-57P03) and a dead socket.
OUTAGE_STATES = ("08", "57P01", "57P02", "57P03")


def _database_errors(url: str):
    """A ``handle_error`` listener turning driver-level failures into ``DatabaseError``."""
    where, hint = safe_url(url), outage_hint(url)

    def handle(ctx: sa.engine.ExceptionContext) -> None:
        if ctx.is_pre_ping:  # the pool replaces the connection itself
            return
        orig = ctx.original_exception
        if getattr(orig, "sqlstate", None) == INSUFFICIENT_PRIVILEGE:
            raise access_denied(orig.diag.message_primary or str(orig))
        if not isinstance(orig, psycopg.OperationalError | psycopg.InterfaceError):
            return
        state = getattr(orig, "sqlstate", None) or ""
        detail = str(orig).strip().splitlines()[0] if str(orig).strip() else type(orig).__name__
        if state == "57014":
            raise DatabaseError(f"the statement was cancelled: {detail}")
        if ctx.connection is None:
            raise DatabaseError(f"cannot connect to {where}{hint}: {detail}")
        if ctx.is_disconnect or isinstance(orig, psycopg.InterfaceError) or state.startswith(OUTAGE_STATES):
            raise DatabaseError(f"lost the connection to {where}{hint}: {detail}")
        raise DatabaseError(f"the database refused the operation: {detail}")

    return handle


INSUFFICIENT_PRIVILEGE = "42501"  # a row-level security check or a missing grant (sql/017)
_REFUSED_TABLE = re.compile(r'(?:policy for table|permission denied for table) "?([A-Za-z0-9_]+)"?')


def access_denied(message: str) -> AccessDeniedError:
    """The database refused the acting user (row-level security, sql/017): name the table."""
    match = _REFUSED_TABLE.search(message)
    return AccessDeniedError(f"not allowed: {message}", table=match.group(1) if match else None)


def dumps_json(value) -> str:
    """JSON text for jsonb parameters; Decimals keep their exact digits as JSON numbers."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} cannot be stored as JSON")
        return str(value)
    if isinstance(value, dict):
        return (
            "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{dumps_json(v)}" for k, v in value.items()) + "}"
        )
    if isinstance(value, list | tuple):
        return "[" + ",".join(dumps_json(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False, allow_nan=False)


def outage_hint(url: str) -> str:
    """What to check when ``url`` cannot be reached (an embedded cluster may just be stopped)."""
    return " (is the embedded cluster running? `crm db start`)" if "127.0.0.1" in url else ""


def outage(url: str, detail: str, *, lost: bool) -> DatabaseError:
    """The error of a server that is out of reach: ``lost`` mid-use, or never reached."""
    verb = "lost the connection to" if lost else "cannot connect to"
    return DatabaseError(f"{verb} {safe_url(url)}{outage_hint(url)}: {detail}")


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    return sa.engine.make_url(sqlalchemy_url(url)).render_as_string(hide_password=True)
