"""DuckDB over a snapshot: the base compiler with duckdb_engine's dialect and $n parameters."""

import duckdb_engine

from .base import Compiler


class DuckDBCompiler(Compiler):
    name = "duckdb"
    dialect = duckdb_engine.Dialect(paramstyle="numeric_dollar")
