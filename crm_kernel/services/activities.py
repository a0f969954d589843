"""Activities: calls, e-mails, meetings, tasks and notes on deals, contacts and companies."""

from __future__ import annotations

import sqlalchemy as sa

from ..model import tables
from ..model.validation import clean_create
from . import changes
from .records import RecordService


class ActivityService(RecordService):
    """``crm.activities``: logging a completed activity on a deal marks the deal as active."""

    def create(self, values: dict | None = None, /, **fields) -> dict:
        clean = clean_create(self.entity, {**(values or {}), **fields})
        with self.crm.transaction() as conn:
            activity = self._insert(conn, clean)
            if activity["deal_id"] is not None and activity["status"] == "completed":
                self._touch_deal(conn, activity)
            return activity

    @staticmethod
    def _touch_deal(conn: sa.Connection, activity: dict) -> None:
        """Move the deal's ``last_activity_at`` forward (never back). It is derived bookkeeping,
        like ``weighted_value``: no version bump, no audit row of its own (the activity's
        has it), but a notification so that open boards refresh the card."""
        deals = tables.table("deals")
        at = activity["completed_at"] or activity["created_at"]
        version = conn.execute(
            sa.update(deals)
            .where(deals.c.id == activity["deal_id"],
                   sa.or_(deals.c.last_activity_at.is_(None), deals.c.last_activity_at < at))
            .values(last_activity_at=at)
            .returning(deals.c.version)
        ).scalar()
        if version is not None:
            changes.publish(conn, "deals", activity["deal_id"], "update", version)
