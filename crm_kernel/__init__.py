"""crm_kernel: a notebook- and analytics-centric CRM.

    from crm_kernel import CRM
    crm = CRM.connect()
"""

from .client import CRM
from .errors import (
    ConfigError,
    ConflictError,
    CrmError,
    DatabaseError,
    NotFoundError,
    QuerySpecError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "CRM", "ConfigError", "ConflictError", "CrmError", "DatabaseError", "NotFoundError", "QuerySpecError",
    "ValidationError",
]
