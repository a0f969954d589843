"""DuckDB over a snapshot: the base compiler with duckdb_engine's dialect and $n parameters.

A snapshot's plain views hide soft-deleted rows; the compiler reads the views that keep them
(and hides deleted rows itself), so that a join still reaches a deleted company, as on
PostgreSQL.
"""

import duckdb_engine
import sqlalchemy as sa

from ...snapshot.views import ALL_ROWS
from .base import Compiler


class DuckDBCompiler(Compiler):
    name = "duckdb"
    dialect = duckdb_engine.Dialect(paramstyle="numeric_dollar")
    all_rows_schema = ALL_ROWS

    def read_custom_list(self, value):
        """As PostgreSQL's crm_json_texts (sql/018_multiselect.sql): the array's elements as
        text, null for anything but an array."""
        texts = sa.func.json_extract_string(value, sa.literal("$[*]", sa.Text), type_=sa.ARRAY(sa.Text()))
        return sa.case((sa.func.json_type(value) == sa.literal("ARRAY", sa.Text), texts))
