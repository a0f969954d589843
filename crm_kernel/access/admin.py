"""Roles and teams, changed by an admin and audited as grants and revocations.

    crm.access.set_role("ann@example.com", "manager")
    crm.access.add_team("East", manager="ann@example.com")
    crm.access.add_member("East", "bob@example.com")
    crm.access.remove_member("East", "bob@example.com")

What each role may read and write is enforced by PostgreSQL (sql/017_row_security.sql); these
functions only change who has which role and who belongs to which team. Each change is one
transaction with its audit row: ``grant``/``revoke`` on the user (a role) or on the team (a
member, a manager).
"""

from __future__ import annotations

import json
import secrets
import uuid
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..errors import AccessDeniedError, NotFoundError, ValidationError
from ..model.catalog import ROLES
from ..services import audit

if TYPE_CHECKING:
    from ..client import CRM


class Access:
    """``crm.access``: roles and teams, for admins."""

    def __init__(self, crm: CRM):
        self.crm = crm

    def _admin(self, what: str) -> None:
        if self.crm.user_role != "admin":
            raise AccessDeniedError(
                f"only admins {what}; {self.crm.user_email} is a {self.crm.user_role}", table="users"
            )

    def set_role(self, email: str, role: str) -> dict:
        """Give the user ``role`` (admin, manager, rep or analyst); returns the user."""
        self._admin("change roles")
        if role not in ROLES:
            raise ValidationError({"role": f"{role!r} is not a role; use one of {', '.join(ROLES)}"}, "users")
        with self.crm.transaction() as conn:
            user = _user(conn, email, lock=True)
            if user.role != role:
                conn.execute(
                    sa.text(
                        "UPDATE users SET role = CAST(:r AS user_role), updated_at = now(), "
                        "updated_by = :by, version = version + 1 WHERE id = :id"
                    ),
                    {"r": role, "by": self.crm.user_id, "id": user.id},
                )
                self._audit(conn, "users", user.id, "grant", {"role": user.role}, {"role": role})
            return {"id": user.id, "email": user.email, "role": role}

    def add_team(self, name: str, *, manager: str | None = None) -> dict:
        """A new team, optionally with its manager (who needs the manager role to see its records)."""
        self._admin("create teams")
        if not isinstance(name, str) or not name.strip():
            raise ValidationError({"name": "a team needs a name"}, "teams")
        with self.crm.transaction() as conn:
            if conn.execute(sa.text("SELECT 1 FROM teams WHERE lower(name) = lower(:n)"), {"n": name.strip()}).first():
                raise ValidationError({"name": f"there is already a team {name.strip()!r}"}, "teams")
            manager_id = _user(conn, manager).id if manager else None
            team_id = conn.execute(
                sa.text("INSERT INTO teams (name, manager_id, created_by) VALUES (:n, :m, :by) RETURNING id"),
                {"n": name.strip(), "m": manager_id, "by": self.crm.user_id},
            ).scalar_one()
            self._audit(conn, "teams", team_id, "create", None, {"name": name.strip(), "manager": manager})
        return self.team(name)

    def set_manager(self, team: str, email: str | None) -> dict:
        """Make ``email`` the team's manager (None: no manager)."""
        self._admin("change teams")
        with self.crm.transaction() as conn:
            found = _team(conn, team)
            manager_id = _user(conn, email).id if email else None
            conn.execute(sa.text("UPDATE teams SET manager_id = :m WHERE id = :id"), {"m": manager_id, "id": found.id})
            self._audit(
                conn,
                "teams",
                found.id,
                "grant" if email else "revoke",
                {"manager_id": str(found.manager_id) if found.manager_id else None},
                {"manager": email},
            )
        return self.team(team)

    def add_member(self, team: str, email: str) -> dict:
        """Put the user in the team (a no-op when they are in it already)."""
        self._admin("change teams")
        with self.crm.transaction() as conn:
            found, user = _team(conn, team), _user(conn, email)
            added = conn.execute(
                sa.text(
                    "INSERT INTO team_members (team_id, user_id, added_by) VALUES (:t, :u, :by) "
                    "ON CONFLICT DO NOTHING RETURNING user_id"
                ),
                {"t": found.id, "u": user.id, "by": self.crm.user_id},
            ).first()
            if added:
                self._audit(conn, "teams", found.id, "grant", None, {"member": user.email})
        return self.team(team)

    def remove_member(self, team: str, email: str) -> dict:
        """Take the user out of the team."""
        self._admin("change teams")
        with self.crm.transaction() as conn:
            found, user = _team(conn, team), _user(conn, email)
            gone = conn.execute(
                sa.text("DELETE FROM team_members WHERE team_id = :t AND user_id = :u RETURNING user_id"),
                {"t": found.id, "u": user.id},
            ).first()
            if gone is None:
                raise NotFoundError(f"{user.email} is not in team {found.name}")
            self._audit(conn, "teams", found.id, "revoke", {"member": user.email}, None)
        return self.team(team)

    def team(self, name: str) -> dict:
        """A team: id, name, manager (e-mail) and members (e-mails, sorted)."""
        with self.crm.engine.connect() as conn:
            found = _team(conn, name)
            return _describe(conn, found)

    def teams(self) -> list[dict]:
        """Every team the acting user can see, by name."""
        with self.crm.engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT id, name, manager_id FROM teams ORDER BY lower(name)")).all()
            return [_describe(conn, row) for row in rows]

    def _audit(self, conn, entity: str, entity_id, operation: str, before, after) -> None:
        audit.record(
            conn,
            user_id=self.crm.user_id,
            entity=entity,
            entity_id=entity_id,
            operation=operation,
            before=json.dumps(before) if before is not None else None,
            after=json.dumps(after) if after is not None else None,
        )


def _user(conn: sa.Connection, email: str, lock: bool = False) -> sa.Row:
    row = conn.execute(
        sa.text(
            "SELECT id, email, role::text AS role FROM users WHERE lower(email) = lower(:e) "
            "AND deleted_at IS NULL" + (" FOR UPDATE" if lock else "")
        ),
        {"e": email},
    ).first()
    if row is None:
        raise NotFoundError(f"no user {email!r}; add one with `crm users add {email}`")
    return row


def _team(conn: sa.Connection, name: str) -> sa.Row:
    row = conn.execute(
        sa.text("SELECT id, name, manager_id FROM teams WHERE lower(name) = lower(:n)"), {"n": str(name).strip()}
    ).first()
    if row is None:
        raise NotFoundError(f"no team {name!r}; create it with `crm users team add {name}`")
    return row


def _describe(conn: sa.Connection, team: sa.Row) -> dict:
    manager = conn.execute(sa.text("SELECT email FROM users WHERE id = :id"), {"id": team.manager_id}).scalar()
    members = (
        conn.execute(
            sa.text(
                "SELECT u.email FROM team_members m JOIN users u ON u.id = m.user_id "
                "WHERE m.team_id = :t ORDER BY lower(u.email)"
            ),
            {"t": team.id},
        )
        .scalars()
        .all()
    )
    return {"id": team.id, "name": team.name, "manager": manager, "members": list(members)}


# -- per-user database logins ----------------------------------------------------------------

LOGIN_PREFIX = "crm_user_"


def db_credentials(owner_engine: sa.Engine, email: str, *, by: uuid.UUID | str | None = None) -> str:
    """Create or rotate the user's own database login and return its connection URL.

    The login (``crm_user_<hex>``, in roles crm_app and crm_personal_login) always acts as this
    user: row-level security gives it exactly the user's rows, and setting ``crm.user_id``
    changes nothing. Needs the schema owner's engine (creating roles takes CREATEROLE). The
    password is random and shown only in the URL returned; rotating replaces it."""
    password = secrets.token_urlsafe(24)
    with owner_engine.begin() as conn:
        user = _user(conn, email)
        login = conn.execute(sa.text("SELECT login FROM crm_user_logins WHERE user_id = :u"), {"u": user.id}).scalar()
        created = login is None
        login = login or f"{LOGIN_PREFIX}{user.id.hex[:16]}"
        exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :l"), {"l": login}).first()
        verb = "ALTER" if exists else "CREATE"
        # Role names and passwords cannot be bound parameters: quote them as PostgreSQL does.
        quoted_login = conn.execute(sa.text("SELECT quote_ident(:l)"), {"l": login}).scalar()
        quoted_password = conn.execute(sa.text("SELECT quote_literal(:p)"), {"p": password}).scalar()
        conn.exec_driver_sql(
            f"{verb} ROLE {quoted_login} LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE "
            f"INHERIT PASSWORD {quoted_password}"
        )
        conn.exec_driver_sql(f"GRANT crm_app, crm_personal_login TO {quoted_login}")
        if created:
            conn.execute(
                sa.text("INSERT INTO crm_user_logins (login, user_id) VALUES (:l, :u)"), {"l": login, "u": user.id}
            )
        _audit_login(conn, by, user, "grant", None, {"database_login": login, "rotated": not created})
    url = owner_engine.url.set(drivername="postgresql", username=login, password=password)
    return url.render_as_string(hide_password=False)


def revoke_db_credentials(owner_engine: sa.Engine, email: str, *, by: uuid.UUID | str | None = None) -> str:
    """Drop the user's own database login, ending its open sessions first (a dropped role's
    session would otherwise run on); returns the login's name. Issuing credentials again
    creates it anew. Needs the schema owner's engine, as :func:`db_credentials` does."""
    with owner_engine.begin() as conn:
        user = _user(conn, email)
        login = conn.execute(sa.text("SELECT login FROM crm_user_logins WHERE user_id = :u"), {"u": user.id}).scalar()
        if login is None:
            raise NotFoundError(f"{email} has no database login")
        conn.execute(sa.text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = :l"), {"l": login})
        quoted_login = conn.execute(sa.text("SELECT quote_ident(:l)"), {"l": login}).scalar()
        conn.exec_driver_sql(f"DROP ROLE IF EXISTS {quoted_login}")
        conn.execute(sa.text("DELETE FROM crm_user_logins WHERE login = :l"), {"l": login})
        _audit_login(conn, by, user, "revoke", {"database_login": login}, None)
    return login


def _audit_login(conn: sa.Connection, by, user: sa.Row, operation: str, before, after) -> None:
    from ..model import SYSTEM_USER_ID

    audit.record(
        conn,
        user_id=by or SYSTEM_USER_ID,
        entity="users",
        entity_id=user.id,
        operation=operation,
        before=None if before is None else json.dumps(before),
        after=None if after is None else json.dumps(after),
    )
