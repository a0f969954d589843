"""Connections, migrations and the embedded PostgreSQL cluster."""

from .engine import connect_engine, resolve_url
from .migrate import migrate, pending_migrations, schema_version

__all__ = ["connect_engine", "resolve_url", "migrate", "pending_migrations", "schema_version"]
