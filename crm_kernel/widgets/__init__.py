"""Widgets for JupyterLab and Voilà: the query workbench and the pipeline board.

    from crm_kernel.widgets import PipelineBoard, Workbench
    Workbench(crm)            # builder, SQL preview, run, result grid, export, saved views
    PipelineBoard(crm)        # drag deals across stages, live
    SearchBox(crm)            # results as you type; CommandPalette(crm): Ctrl+K in any app

``QueryBuilder`` edits a query spec, ``ResultGrid`` shows a spec's result a page at a time.
They are thin: every query goes through ``crm_kernel.query`` (via ``crm.execute``), saved views
through ``crm.saved_queries``.
"""

from .builder import QueryBuilder
from .fields import FieldCatalog
from .grid import ResultGrid
from .pipeline_board import PipelineBoard
from .search import CommandPalette, SearchBox
from .source import Source
from .workbench import Workbench

__all__ = ["CommandPalette", "FieldCatalog", "PipelineBoard", "QueryBuilder", "ResultGrid", "SearchBox", "Source",
           "Workbench"]
