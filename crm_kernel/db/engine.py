"""Engines: one place that turns settings into a SQLAlchemy engine on psycopg 3."""

from __future__ import annotations

import sqlalchemy as sa

from ..config import Config
from ..errors import DatabaseError
from . import embedded


def sqlalchemy_url(url: str) -> str:
    """Accept the URL forms people paste (``postgres://``, ``postgresql://``) and pick psycopg 3."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
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


def connect_engine(url: str, timezone: str = "UTC") -> sa.Engine:
    """An engine whose sessions use ``timezone`` and fail fast when the server is down."""
    engine = sa.create_engine(
        sqlalchemy_url(url),
        # Query specs bind their values; a custom plan per execution keeps date ranges and
        # value filters as well planned as hand-written SQL with literals.
        connect_args={"options": f"-c timezone={timezone} -c plan_cache_mode=force_custom_plan",
                      "connect_timeout": 10},
        pool_pre_ping=True,
    )
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        engine.dispose()
        hint = "" if "127.0.0.1" not in url else " (is the embedded cluster running? `crm db start`)"
        raise DatabaseError(f"cannot connect to {safe_url(url)}{hint}: {exc.orig}") from exc
    return engine


def safe_url(url: str) -> str:
    """The URL with its password masked, for messages."""
    return sa.engine.make_url(sqlalchemy_url(url)).render_as_string(hide_password=True)
