"""DuckDB over a snapshot: the base compiler with duckdb_engine's dialect and $n parameters.

A snapshot's plain views hide soft-deleted rows; the compiler reads the views that keep them
(and hides deleted rows itself), so that a join still reaches a deleted company, as on
PostgreSQL.
"""

import duckdb_engine

from ...snapshot.views import ALL_ROWS
from .base import Compiler


class DuckDBCompiler(Compiler):
    name = "duckdb"
    dialect = duckdb_engine.Dialect(paramstyle="numeric_dollar")
    all_rows_schema = ALL_ROWS
