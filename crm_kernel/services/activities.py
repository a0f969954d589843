"""Activities: calls, e-mails, meetings, tasks and notes on deals, contacts and companies."""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import ValidationError
from ..model import tables
from ..model.validation import clean_create, merged
from . import changes
from .records import RecordService, as_uuid

# An activity on a deal may name the deal's own company and contact: they are the deal's,
# copied from its row, and stay valid after either is soft-deleted.
_FROM_DEAL = ("company_id", "contact_id")


class ActivityService(RecordService):
    """``crm.activities``: logging a completed activity on a deal marks the deal as active."""

    def create(self, values: dict | None = None, /, **fields) -> dict:
        clean = clean_create(self.entity, merged(values, fields))
        with self.crm.transaction() as conn:
            return self.log(conn, clean, inherited=self._deals_own(conn, clean))

    def complete(self, activity_id, *, expected_version: int | None = None) -> dict:
        """Mark a task (or any pending activity) done now: ``status`` completed, ``completed_at``
        set, and its deal's ``last_activity_at`` moved forward, in one transaction. An activity
        already completed is returned as it is; a cancelled one cannot be completed."""
        with self.crm.transaction() as conn:
            before = self._lock(conn, activity_id, expected_version)
            if before["status"] == "completed":
                return self._public(before)
            if before["status"] == "cancelled":
                raise ValidationError(
                    {"status": f"activity {before['id']} was cancelled; it cannot be completed"}, "activities"
                )
            activity = self._update(conn, before, {"status": "completed", "completed_at": sa.func.now()}, "update")
            if activity["deal_id"] is not None:
                self._touch_deal(conn, activity)
            return activity

    def log(self, conn: sa.Connection, clean: dict, *, inherited: tuple[str, ...] = ()) -> dict:
        """Insert an activity inside the caller's transaction ``conn`` (as a deal's move does).

        ``clean`` holds validated values; the references named in ``inherited`` were copied
        from a row the caller has locked and are not checked again, all others are.
        """
        activity = self._insert(conn, clean, inherited)
        if activity["deal_id"] is not None and activity["status"] == "completed":
            self._touch_deal(conn, activity)
        return activity

    @staticmethod
    def _deals_own(conn: sa.Connection, clean: dict) -> tuple[str, ...]:
        """The references in ``clean`` that equal its deal's own, with the deal locked so that
        they cannot change before the insert commits (the lock ``_touch_deal`` takes anyway)."""
        if clean.get("deal_id") is None:
            return ()
        deals = tables.table("deals")
        deal = (
            conn.execute(
                sa.select(deals.c.company_id, deals.c.contact_id)
                .where(deals.c.id == as_uuid(clean["deal_id"], "deal_id"), deals.c.deleted_at.is_(None))
                .with_for_update(key_share=True)
            )
            .mappings()
            .first()
        )
        if deal is None:
            return ()  # the reference check names the missing deal
        return tuple(name for name in _FROM_DEAL if clean.get(name) is not None and clean[name] == deal[name])

    @staticmethod
    def _touch_deal(conn: sa.Connection, activity: dict) -> None:
        """Move the deal's ``last_activity_at`` forward (never back). It is derived bookkeeping,
        like ``weighted_value``: no version bump, no audit row of its own (the activity's
        has it), but a notification so that open boards refresh the card."""
        deals = tables.table("deals")
        at = activity["completed_at"] or activity["created_at"]
        version = conn.execute(
            sa.update(deals)
            .where(
                deals.c.id == activity["deal_id"],
                sa.or_(deals.c.last_activity_at.is_(None), deals.c.last_activity_at < at),
            )
            .values(last_activity_at=at)
            .returning(deals.c.version)
        ).scalar()
        if version is not None:
            changes.publish(conn, "deals", activity["deal_id"], "update", version)
