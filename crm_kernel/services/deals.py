"""Deals and the pipeline: stage rules on create, and moving a deal between stages."""

from __future__ import annotations

import sqlalchemy as sa

from ..errors import ValidationError
from ..model import tables
from ..model.validation import clean_create, clean_update, merged
from .records import RecordService, as_uuid


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, str | list | dict) and len(value) == 0)


class StageService(RecordService):
    """``crm.stages``: the pipeline's stages, in board order."""

    def resolve(self, stage, conn: sa.Connection | None = None, *, field: str = "stage") -> dict:
        """A live, active stage by id, by ``uuid.UUID`` or by name (case-insensitive).

        ``field`` is the name errors give the argument (``stage_id`` when it came as a field)."""
        t = self.table
        stmt = sa.select(*self.columns).where(t.c.deleted_at.is_(None), t.c.is_active)
        try:
            stmt = stmt.where(t.c.id == as_uuid(stage, field))
        except ValidationError:
            if not isinstance(stage, str) or "\x00" in stage:
                raise ValidationError({field: f"{stage!r} is not a stage id or name"}, "deals") from None
            stmt = stmt.where(sa.func.lower(t.c.name) == stage.strip().lower())
        if conn is None:
            with self.crm.engine.connect() as own:
                row = own.execute(stmt).mappings().first()
        else:
            row = conn.execute(stmt).mappings().first()
        if row is None:
            names = ", ".join(s["name"] for s in self.list(is_active=True))
            raise ValidationError({field: f"unknown stage {stage!r}; the stages are {names}"}, "deals")
        return dict(row)

    def first(self) -> dict:
        """The stage new deals start in: the first active one on the board."""
        stages = self.list(is_active=True, limit=1)
        if not stages:
            raise ValidationError({"stage": "the pipeline has no active stage"}, "deals")
        return stages[0]


def check_required(stage: dict, deal: dict, clean: dict, only_changed: bool = False) -> None:
    """Raise ``ValidationError`` listing the stage's required fields that would be empty once
    ``clean`` is applied to ``deal``; with ``only_changed``, only the fields ``clean`` sets
    (an edit in place must not empty them, but need not fill ones that were already empty)."""
    after = {**deal, **clean}
    missing = {
        name: f"is required in stage {stage['name']}"
        for name in stage["required_fields"]
        if _is_blank(after.get(name)) and (name in clean or not only_changed)
    }
    if missing:
        raise ValidationError(missing, "deals")


def stage_rules(stage: dict, deal: dict, clean: dict) -> dict:
    """Values a deal takes on entering ``stage``, given its current state and the changes asked for.

    Raises ``ValidationError`` listing the stage's required fields that would be empty.
    """
    check_required(stage, deal, clean)
    values = {**clean, "stage_id": stage["id"]}
    values.setdefault("probability", stage["probability"])
    if "actual_close_date" not in clean:
        closed = stage["is_closed_won"] or stage["is_closed_lost"]
        values["actual_close_date"] = (deal.get("actual_close_date") or sa.func.current_date()) if closed else None
    return values


class DealService(RecordService):
    """``crm.deals``: records that follow their stage's rules, plus :meth:`move`."""

    def create(self, values: dict | None = None, /, **fields) -> dict:
        """Create a deal; without ``stage_id`` it starts in the first stage of the pipeline.
        ``stage_id`` is a stage's id or its name (case-insensitive), as :meth:`move` takes it.

        It enters that stage now (``stage_entered_at`` defaults to the time of the insert)."""
        data = merged(values, fields)
        if data.get("stage_id") is None:
            data["stage_id"] = self.crm.stages.first()["id"]
        else:  # an id or a stage's name, as move() takes it
            data["stage_id"] = self.crm.stages.resolve(data["stage_id"], field="stage_id")["id"]
        clean = clean_create(self.entity, data)
        with self.crm.transaction() as conn:
            stage = self.crm.stages.resolve(clean["stage_id"], conn, field="stage_id")
            return self._insert(conn, stage_rules(stage, {}, clean))

    def update(
        self, record_id, changes: dict | None = None, /, *, expected_version: int | None = None, **fields
    ) -> dict:
        """Change fields; a new ``stage_id`` makes this a :meth:`move`.

        The deal's stage keeps its rules: a field the stage requires cannot be emptied."""
        data = merged(changes, fields)
        if "stage_id" in data:
            stage = data.pop("stage_id")
            return self._move(record_id, stage, expected_version, data, stage_field="stage_id")
        clean = clean_update(self.entity, data)
        with self.crm.transaction() as conn:
            before = self._lock(conn, record_id, expected_version)
            if not clean:
                return self._public(before)
            check_required(self._stage(conn, before["stage_id"]), before, clean, only_changed=True)
            return self._update(conn, before, clean, "update")

    def move(self, deal_id, stage, *, expected_version: int | None = None, changes: dict | None = None) -> dict:
        """Move a deal to ``stage`` (id or name), setting ``changes`` in the same transaction.

        Checks the stage's required fields against the deal as it will be, sets the stage's
        probability (unless ``changes`` sets one) and the actual close date on won/lost stages,
        and records a ``stage_change`` activity, an audit row and a change notification.
        """
        return self._move(deal_id, stage, expected_version, changes, stage_field="stage")

    def _move(self, deal_id, stage, expected_version: int | None, changes: dict | None, stage_field: str) -> dict:
        clean = clean_update(self.entity, merged(changes, {}))
        if "stage_id" in clean:
            raise ValidationError({"stage_id": "pass the stage as move()'s stage argument"}, "deals")
        with self.crm.transaction() as conn:
            before = self._lock(conn, deal_id, expected_version)
            target = self.crm.stages.resolve(stage, conn, field=stage_field)
            if target["id"] == before["stage_id"] and not clean:
                return self._public(before)
            if target["id"] == before["stage_id"]:
                check_required(target, before, clean, only_changed=True)
                return self._update(conn, before, clean, "update")
            values = stage_rules(target, before, clean)
            values["last_activity_at"] = sa.func.now()
            values["stage_entered_at"] = sa.func.now()
            deal = self._update(conn, before, values, "move")
            self._log_stage_change(conn, deal, before["stage_id"], target)
            return deal

    @staticmethod
    def _stage(conn: sa.Connection, stage_id) -> dict:
        """The deal's current stage, even when it has since been deactivated or deleted."""
        stages = tables.table("pipeline_stages")
        return dict(conn.execute(sa.select(stages).where(stages.c.id == stage_id)).mappings().one())

    def _log_stage_change(self, conn: sa.Connection, deal: dict, from_stage_id, target: dict) -> None:
        """The stage-change activity; its references are the moved deal's own (locked) ones."""
        stages = tables.table("pipeline_stages")
        from_name = conn.execute(sa.select(stages.c.name).where(stages.c.id == from_stage_id)).scalar_one()
        self.crm.activities.log(
            conn,
            {
                "deal_id": deal["id"],
                "company_id": deal["company_id"],
                "contact_id": deal["contact_id"],
                "owner_id": self.crm.user_id,
                "type": "stage_change",
                "subject": f"Stage: {from_name} \u2192 {target['name']}",
                "status": "completed",
                "completed_at": sa.func.now(),
                "external_data": {"from_stage_id": str(from_stage_id), "to_stage_id": str(target["id"])},
            },
            inherited=("deal_id", "company_id", "contact_id"),
        )
