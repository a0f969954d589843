"""The compiler every engine shares (base.py); each engine's dialect lives in its module under
``query/engines/``."""

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

from .base import CompiledQuery, Compiler, OutputColumn

if TYPE_CHECKING:
    from ..engines.duckdb import DuckDBCompiler
    from ..engines.postgres import PostgresCompiler


class _Compilers(Mapping):
    """Backend name -> compiler class, from the engine registry (each imported on first use)."""

    def __getitem__(self, name: str) -> type[Compiler]:
        from ..engines import ENGINES

        return ENGINES[name].compiler

    def __iter__(self) -> Iterator[str]:
        from ..engines import ENGINES

        return iter(ENGINES)

    def __len__(self) -> int:
        from ..engines import ENGINES

        return len(ENGINES)


COMPILERS: Mapping[str, type[Compiler]] = _Compilers()

__all__ = ["COMPILERS", "CompiledQuery", "Compiler", "DuckDBCompiler", "OutputColumn", "PostgresCompiler"]


def __getattr__(name: str):
    if name == "DuckDBCompiler":
        return COMPILERS["duckdb"]
    if name == "PostgresCompiler":
        return COMPILERS["postgres"]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
