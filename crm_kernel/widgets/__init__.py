"""Widgets for JupyterLab and Voilà: the query workbench and the pipeline board.

    from crm_kernel.widgets import PipelineBoard, Workbench
    Workbench(crm)            # builder, SQL preview, run, result grid, export, saved views
    PipelineBoard(crm)        # drag deals across stages, live

``QueryBuilder`` edits a query spec, ``ResultGrid`` shows a spec's result a page at a time.
They are thin: every query goes through ``crm_kernel.query`` (via ``crm.execute``), saved views
through ``crm.saved_queries``.
"""

from importlib import import_module
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .builder import QueryBuilder
    from .fields import FieldCatalog
    from .grid import ResultGrid
    from .pipeline_board import PipelineBoard
    from .source import Source
    from .workbench import Workbench

# Each name is imported when first asked for: the pipeline board's kernel never loads the
# workbench's grid (ipydatagrid and pandas, about 130 MB resident), nor the reverse.
_MODULES = {"FieldCatalog": "fields", "PipelineBoard": "pipeline_board", "QueryBuilder": "builder",
            "ResultGrid": "grid", "Source": "source", "Workbench": "workbench"}

__all__ = ["FieldCatalog", "PipelineBoard", "QueryBuilder", "ResultGrid", "Source", "Workbench"]


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_MODULES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
