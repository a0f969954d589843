"""Deals and the pipeline: moving a deal between stages."""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import ValidationError
from ..model import tables
from ..model.validation import clean_update
from .records import RecordService, as_uuid


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


class StageService(RecordService):
    """``crm.stages``: the pipeline's stages, in board order."""

    def resolve(self, stage, conn: sa.Connection | None = None) -> dict:
        """A live, active stage by id, by ``uuid.UUID`` or by name (case-insensitive)."""
        t = self.table
        stmt = sa.select(*self.columns).where(t.c.deleted_at.is_(None), t.c.is_active)
        try:
            stmt = stmt.where(t.c.id == as_uuid(stage, "stage"))
        except ValidationError:
            stmt = stmt.where(sa.func.lower(t.c.name) == str(stage).strip().lower())
        if conn is None:
            with self.crm.engine.connect() as own:
                row = own.execute(stmt).mappings().first()
        else:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            names = ", ".join(s["name"] for s in self.list(is_active=True))
            raise ValidationError({"stage": f"unknown stage {stage!r}; the stages are {names}"}, "deals")
        return dict(row)


class DealService(RecordService):
    """``crm.deals``: records plus :meth:`move`."""

    def move(self, deal_id, stage, *, expected_version: int | None = None, changes: dict | None = None) -> dict:
        """Move a deal to ``stage`` (id or name), setting ``changes`` in the same transaction.

        Checks the stage's required fields against the deal as it will be, sets the stage's
        probability (unless ``changes`` sets one) and the actual close date on won/lost stages,
        and records a ``stage_change`` activity, an audit row and a change notification.
        """
        clean = clean_update(self.entity, changes or {})
        if "stage_id" in clean:
            raise ValidationError({"stage_id": "pass the stage as move()'s stage argument"}, "deals")
        with self.crm.transaction() as conn:
            before = self._lock(conn, deal_id, expected_version)
            target = self.crm.stages.resolve(stage, conn)
            if target["id"] == before["stage_id"] and not clean:
                return self._public(before)
            after = {**before, **clean}
            missing = {
                name: f"is required in stage {target['name']}"
                for name in target["required_fields"]
                if _is_blank(after.get(name))
            }
            if missing:
                raise ValidationError(missing, "deals")
            values = {"stage_id": target["id"], **clean}
            values.setdefault("probability", target["probability"])
            closed = target["is_closed_won"] or target["is_closed_lost"]
            if "actual_close_date" not in clean:
                values["actual_close_date"] = (before["actual_close_date"] or sa.func.current_date()) if closed else None
            values["last_activity_at"] = sa.func.now()
            deal = self._update(conn, before, values, "move")
            if target["id"] != before["stage_id"]:
                self._log_stage_change(conn, deal, before["stage_id"], target)
            return deal

    def _log_stage_change(self, conn: sa.Connection, deal: dict, from_stage_id, target: dict) -> None:
        stages = tables.table("pipeline_stages")
        from_name = conn.execute(sa.select(stages.c.name).where(stages.c.id == from_stage_id)).scalar_one()
        self.crm.activities._insert(conn, {
            "deal_id": deal["id"],
            "company_id": deal["company_id"],
            "contact_id": deal["contact_id"],
            "owner_id": self.crm.user_id,
            "type": "stage_change",
            "subject": f"Stage: {from_name} \u2192 {target['name']}",
            "status": "completed",
            "completed_at": sa.func.now(),
            "external_data": {"from_stage_id": str(from_stage_id), "to_stage_id": str(target["id"])},
        })
