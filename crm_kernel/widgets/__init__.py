"""Widgets for JupyterLab and Voilà: the query workbench.

    from crm_kernel.widgets import Workbench
    Workbench(crm)            # builder, SQL preview, run, result grid, export, saved views

``QueryBuilder`` edits a query spec, ``ResultGrid`` shows a spec's result a page at a time.
They are thin: every query goes through ``crm_kernel.query`` (via ``crm.execute``), saved views
through ``crm.saved_queries``.
"""

from .builder import QueryBuilder
from .fields import FieldCatalog
from .grid import ResultGrid
from .source import Source
from .workbench import Workbench

__all__ = ["FieldCatalog", "QueryBuilder", "ResultGrid", "Source", "Workbench"]
