"""The query language: a JSON spec compiled safely to PostgreSQL and DuckDB.

    from crm_kernel.query import compile_spec
    print(compile_spec({"entity": "deals", "select": ["title", "stage.name"]}).preview())
"""

from ..errors import QuerySpecError
from .compilers import CompiledQuery, Compiler, DuckDBCompiler, PostgresCompiler
from .control import QueryCancelled, RunHandle
from .operators import OPERATORS, Operator, operators_for
from .run import BACKENDS, QueryResult, compile_spec, run_duckdb, run_postgres
from .schema import Schema
from .spec import QuerySpec, parse

__all__ = [
    "BACKENDS", "OPERATORS", "CompiledQuery", "Compiler", "DuckDBCompiler", "Operator", "PostgresCompiler",
    "QueryCancelled", "QueryResult", "QuerySpec", "QuerySpecError", "RunHandle", "Schema", "compile_spec", "operators_for", "parse",
    "run_duckdb", "run_postgres",
]
