"""crm_kernel: a notebook- and analytics-centric CRM.

from crm_kernel import CRM
crm = CRM.connect()
"""

from typing import TYPE_CHECKING

from .errors import (
    ConfigError,
    ConflictError,
    CrmError,
    DatabaseError,
    NotFoundError,
    QuerySpecError,
    ValidationError,
)

if TYPE_CHECKING:
    from .client import CRM

__version__ = "0.1.0"

__all__ = [
    "CRM",
    "ConfigError",
    "ConflictError",
    "CrmError",
    "DatabaseError",
    "NotFoundError",
    "QuerySpecError",
    "ValidationError",
]


def __getattr__(name: str):
    # CRM on first use: ``import crm_kernel.errors`` (or the CLI's --help) loads no database stack
    if name == "CRM":
        from .client import CRM

        return CRM
    raise AttributeError(f"module 'crm_kernel' has no attribute {name!r}")
