"""Analytics over the CRM (the pipeline board's data lives in ``crm_kernel.board``)."""

__all__: list[str] = []
