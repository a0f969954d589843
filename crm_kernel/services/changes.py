"""Change notifications: every committed write announces itself on one PostgreSQL channel.

Open pipeline boards ``LISTEN crm_changes``; the payload is small JSON
``{"entity", "id", "operation", "version"}`` and is delivered only if the write commits.
"""

from __future__ import annotations

import json

import sqlalchemy as sa

CHANNEL = "crm_changes"


def publish(conn: sa.Connection, entity: str, record_id, operation: str, version: int | None) -> None:
    payload = json.dumps({"entity": entity, "id": str(record_id), "operation": operation, "version": version})
    conn.execute(sa.select(sa.func.pg_notify(CHANNEL, payload)))
