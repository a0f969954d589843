"""Analytics over the CRM: the pipeline board's data (more to come: forecast, funnel, velocity).

    from crm_kernel.analytics import Board, Pipeline
"""

from .board import Board
from .pipeline import BoardFilter, Pipeline, Totals

__all__ = ["Board", "BoardFilter", "Pipeline", "Totals"]

# The analytics layer (crm.analytics); its charts are `crm_kernel.analytics.charts`, imported
# on demand so that connecting does not load altair.
from .core import Analytics  # noqa: E402

__all__ += ["Analytics"]
