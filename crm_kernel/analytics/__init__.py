"""Analytics over the CRM: the pipeline from the deals' history (as of any moment, waterfall,
funnel, velocity, slippage, win rate, cycle time), forecast and backtest, as polars frames on
PostgreSQL or a snapshot (``crm.analytics``). Charts are ``crm_kernel.analytics.charts``,
imported on demand so that connecting does not load altair. The pipeline board's data lives in
``crm_kernel.board``.
"""

from .core import Analytics

__all__ = ["Analytics"]
