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

__all__ = ["CommandPalette", "FieldCatalog", "ImportWizard", "LogActivity", "PipelineBoard", "QueryBuilder",
           "RecordForm", "ResultGrid", "SearchBox", "Source", "Timeline", "Workbench"]
