"""One compiler per engine; see base.py for the shared logic."""

from .base import CompiledQuery, Compiler, OutputColumn
from .duckdb import DuckDBCompiler
from .postgres import PostgresCompiler

COMPILERS: dict[str, type[Compiler]] = {"postgres": PostgresCompiler, "duckdb": DuckDBCompiler}

__all__ = ["COMPILERS", "CompiledQuery", "Compiler", "DuckDBCompiler", "OutputColumn", "PostgresCompiler"]
