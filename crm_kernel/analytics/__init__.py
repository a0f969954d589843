"""Analytics over the CRM: the pipeline board's data (more to come: forecast, funnel, velocity).

    from crm_kernel.analytics import Board, Pipeline
"""

from .board import Board
from .pipeline import BoardFilter, Pipeline, Totals

__all__ = ["Board", "BoardFilter", "Pipeline", "Totals"]

from .core import Analytics  # noqa: E402  (the analytics layer; the board's code above moves to board/)

__all__ += ["Analytics"]
