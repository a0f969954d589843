"""PostgreSQL: the base compiler as it is, on psycopg 3."""

from sqlalchemy.dialects.postgresql import psycopg

from .base import Compiler


class PostgresCompiler(Compiler):
    name = "postgres"
    dialect = psycopg.dialect()
    # psycopg's pyformat doubles every % in literal SQL; named parameters read as written.
    preview_dialect = psycopg.dialect(paramstyle="named")
