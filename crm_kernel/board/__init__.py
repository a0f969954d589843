"""The pipeline board's data and state: board filters as query specs, column totals in the
reporting currency, cards, and the moves the board makes (the widget is
``crm_kernel.widgets.PipelineBoard``; nothing here knows it exists).

    from crm_kernel.board import Board, Pipeline
"""

from .pipeline import BoardFilter, Pipeline, Totals
from .state import Board

__all__ = ["Board", "BoardFilter", "Pipeline", "Totals"]
