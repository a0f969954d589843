"""One compiler per engine; see base.py for the shared logic."""

from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import TYPE_CHECKING

from .base import CompiledQuery, Compiler, OutputColumn
from .postgres import PostgresCompiler

if TYPE_CHECKING:
    from .duckdb import DuckDBCompiler


class _Compilers(Mapping):
    """Backend name -> compiler class. DuckDB's (duckdb and duckdb_engine, about 40 MB resident)
    is imported with the first DuckDB query, so that a kernel that only asks PostgreSQL never
    loads it."""

    _classes = {"postgres": (".postgres", "PostgresCompiler"), "duckdb": (".duckdb", "DuckDBCompiler")}

    def __getitem__(self, name: str) -> type[Compiler]:
        module, cls = self._classes[name]
        return getattr(import_module(module, __name__), cls)

    def __iter__(self) -> Iterator[str]:
        return iter(self._classes)

    def __len__(self) -> int:
        return len(self._classes)


COMPILERS: Mapping[str, type[Compiler]] = _Compilers()

__all__ = ["COMPILERS", "CompiledQuery", "Compiler", "DuckDBCompiler", "OutputColumn", "PostgresCompiler"]


def __getattr__(name: str):
    if name == "DuckDBCompiler":
        return COMPILERS["duckdb"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
