"""Small helpers shared by the tests."""

from __future__ import annotations

import datetime as dt
import decimal
import json
import tempfile
import uuid
from pathlib import Path


def scratch_dir(prefix: str) -> Path:
    """A folder the postgres system user can reach (pytest's tmp_path is private to root)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def hand_rows(engine, hand_sql: str) -> list:
    """The rows of hand-written SQL as psycopg returns them (``:`` is not a parameter)."""
    import sqlalchemy as sa

    with engine.connect() as conn:
        return conn.execute(sa.text(hand_sql.replace(":", r"\:"))).all()


def same_value(got, want) -> bool:
    """Whether a frame's value is the database's value, converted here without crm_kernel.

    ``want`` is what psycopg returns. Ids come back as their text, JSON as its text; every other
    value must have psycopg's Python type and equal it (a decimal also its number of places),
    so that a frame holding floats for money, datetimes for dates or text for numbers fails.
    """
    if isinstance(want, uuid.UUID):
        return isinstance(got, str) and got == str(want)
    if isinstance(want, list) and isinstance(got, list):  # a text[] column (tags)
        return all(isinstance(item, str) for item in got) and got == want
    if isinstance(want, dict | list):
        return isinstance(got, str) and json.loads(got) == want
    if isinstance(want, decimal.Decimal):
        return isinstance(got, decimal.Decimal) and str(got) == str(want)
    if isinstance(want, dt.datetime):
        return isinstance(got, dt.datetime) and got.tzinfo is not None and got == want
    return type(got) is type(want) and got == want


def assert_rows_match(frame, want: list, ordered: bool) -> None:
    """A polars frame holds exactly the database rows ``want`` (in that order when ``ordered``)."""
    got = list(frame.iter_rows())
    assert len(got) == len(want), f"{len(got)} rows, expected {len(want)}: {got} != {want}"
    assert all(len(row) == frame.width for row in want), "the hand-written SQL has other columns"
    if ordered:
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert all(map(same_value, g, w)), f"row {i}: {g} != {w}"
        return
    left = list(got)
    for w in want:
        match = next((g for g in left if all(map(same_value, g, w))), None)
        assert match is not None, f"no row like {w} in {left}"
        left.remove(match)


# Migrated once when the session starts and never connected to again: a fresh CRM database is
# a copy of it (CREATE DATABASE ... TEMPLATE), much quicker than running the migrations.
TEMPLATE_DATABASE = "crm_template"


def create_database(engine, name: str, *, template: str = TEMPLATE_DATABASE) -> str:
    """(Re)create database ``name`` as a copy of ``template`` in ``engine``'s cluster; its libpq URL."""
    from crm_kernel.db.engine import libpq_url

    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    return libpq_url(engine.url.set(database=name).render_as_string(hide_password=False))


APP_LOGIN = "crm_test_service"  # the app_engine fixture's login, in role crm_app


def as_user(app_engine, name: str):
    """A CRM acting as ``<name>@example.com`` on the app login (row-level security applies)."""
    from crm_kernel import CRM

    return CRM(app_engine, user=f"{name}@example.com")
