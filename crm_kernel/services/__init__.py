"""Domain operations. Each public method is one transaction."""

from .deals import DealService, StageService
from .records import RecordService, as_uuid

__all__ = ["DealService", "RecordService", "StageService", "as_uuid"]
