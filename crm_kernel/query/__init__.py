"""The query language: a JSON spec compiled safely to PostgreSQL and DuckDB.

from crm_kernel.query import compile_spec
print(compile_spec({"entity": "deals", "select": ["title", "stage.name"]}).preview())
"""

from typing import TYPE_CHECKING

from ..errors import QuerySpecError
from .compilers import COMPILERS, CompiledQuery, Compiler
from .control import QueryCancelled, RunHandle
from .engines import ENGINES
from .engines.postgres import PostgresCompiler
from .operators import OPERATORS, Operator, operators_for
from .run import BACKENDS, QueryResult, compile_spec, run_duckdb, run_postgres
from .schema import Schema
from .spec import QuerySpec, parse

if TYPE_CHECKING:
    from .engines.duckdb import DuckDBCompiler

__all__ = [
    "BACKENDS",
    "ENGINES",
    "OPERATORS",
    "CompiledQuery",
    "Compiler",
    "DuckDBCompiler",
    "Operator",
    "PostgresCompiler",
    "QueryCancelled",
    "QueryResult",
    "QuerySpec",
    "QuerySpecError",
    "RunHandle",
    "Schema",
    "compile_spec",
    "operators_for",
    "parse",
    "run_duckdb",
    "run_postgres",
]


def __getattr__(name: str):
    if name == "DuckDBCompiler":  # imported with the first DuckDB query (see compilers/__init__.py)
        return COMPILERS["duckdb"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
