"""Widgets for JupyterLab and Voilà: the query workbench and the pipeline board.

    from crm_kernel.widgets import PipelineBoard, Workbench
    Workbench(crm)            # builder, SQL preview, run, result grid, export, saved views
    PipelineBoard(crm)        # drag deals across stages, live
    RecordForm(crm, "companies", company_id)   # one record's fields, saved with its version
    Timeline(crm, "deals", deal_id); LogActivity(crm, "deals", deal_id)
    ImportWizard(crm)         # upload a CSV or Excel file, map, preview, import
    SearchBox(crm)            # results as you type; CommandPalette(crm): Ctrl+K in any app

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
    from .importer import ImportWizard
    from .pipeline_board import PipelineBoard
    from .record_form import RecordForm
    from .search import CommandPalette, SearchBox
    from .source import Source
    from .timeline import LogActivity, Timeline
    from .workbench import Workbench

# Each name is imported when first asked for: the pipeline board's kernel never loads the
# workbench's grid (ipydatagrid and pandas, about 130 MB resident), nor the reverse.
_MODULES = {
    "CommandPalette": "search",
    "FieldCatalog": "fields",
    "ImportWizard": "importer",
    "LogActivity": "timeline",
    "PipelineBoard": "pipeline_board",
    "QueryBuilder": "builder",
    "RecordForm": "record_form",
    "ResultGrid": "grid",
    "SearchBox": "search",
    "Source": "source",
    "Timeline": "timeline",
    "Workbench": "workbench",
}

__all__ = [
    "CommandPalette",
    "FieldCatalog",
    "ImportWizard",
    "LogActivity",
    "PipelineBoard",
    "QueryBuilder",
    "RecordForm",
    "ResultGrid",
    "SearchBox",
    "Source",
    "Timeline",
    "Workbench",
]


def __getattr__(name: str):
    if name not in _MODULES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f".{_MODULES[name]}", __name__), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
