"""The engines a query runs on, one module each (ibis's and sqlglot's habit): a module owns its
dialect (a compiler subclass), its reflection, how it reads custom fields, how it runs a
compiled query and how its results become frames. A third engine is one new module and one
row in ``_MODULES``.

    from crm_kernel.query.engines import engine
    engine("duckdb").execute(crm, spec, snapshot=folder)

Faces (client, CLI, widgets, export) look engines up here and never branch on their names.
DuckDB's module (duckdb and duckdb_engine, about 40 MB resident) is imported with its first
use, so a kernel that only asks PostgreSQL never loads it.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from importlib import import_module
from typing import TYPE_CHECKING

from ...errors import QuerySpecError

if TYPE_CHECKING:
    from .base import Engine

# name -> (module, label the faces show)
_MODULES = {
    "postgres": (".postgres", "Live (PostgreSQL)"),
    "duckdb": (".duckdb", "Latest snapshot (DuckDB)"),
}
LABELS = {name: label for name, (_, label) in _MODULES.items()}


class _Engines(Mapping):
    """Engine name -> engine, each imported on first use."""

    def __getitem__(self, name: str) -> Engine:
        return import_module(_MODULES[name][0], __name__).ENGINE

    def __iter__(self) -> Iterator[str]:
        return iter(_MODULES)

    def __len__(self) -> int:
        return len(_MODULES)


ENGINES: Mapping[str, Engine] = _Engines()


def loaded() -> list[Engine]:
    """The engines already imported (a face that catches engine errors needs no others: an
    engine not yet loaded has raised nothing)."""
    return [ENGINES[name] for name, (module, _) in _MODULES.items() if f"{__name__}{module}" in sys.modules]


def engine(name: str, path: str = "backend") -> Engine:
    """The engine called ``name``, or QuerySpecError listing the registered ones."""
    if name not in _MODULES:
        raise QuerySpecError(path, f"unknown backend {name!r}; use one of {', '.join(_MODULES)}")
    return ENGINES[name]
