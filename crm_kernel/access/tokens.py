"""Sign-in tokens: issued per user, stored hashed, listed, revoked, traded for a session.

    from crm_kernel.access import tokens
    issued, secret = tokens.issue(engine, "ann@example.com")   # secret: shown once, never stored
    tokens.verify(engine, secret)                                # -> SignInToken, or None
    tokens.revoke(engine, "ann@example.com")                     # every token of Ann's

Only the SHA-256 of a token is stored (sql/010_sign_in_tokens.sql): a token is 32 random
bytes, so no salt or slow hash is needed to keep it from being guessed from its hash.
Functions take an engine, not a CRM: the Voilà server checks tokens without loading the rest of
the library. Issuing, revoking and signing in each write an audit row in the same transaction,
as changes to the token's row: ``create``, then ``update`` with ``after.event`` ``sign_in`` or
``revoke``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from ..errors import NotFoundError, SignInError
from ..model import SYSTEM_USER_ID
from ..services import audit

ENTITY = "sign_in_tokens"
SIGN_IN, REVOKE = "sign_in", "revoke"  # after.event of the token's audit rows


@dataclass(frozen=True)
class SignInToken:
    """A token as listed: never the token itself, which only its holder has."""

    id: uuid.UUID
    user_id: uuid.UUID
    email: str
    full_name: str
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @property
    def active(self) -> bool:
        return self.revoked_at is None


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


_SELECT = """
SELECT t.id, t.user_id, u.email, u.full_name, t.created_at, t.last_used_at, t.revoked_at
FROM sign_in_tokens t JOIN users u ON u.id = t.user_id
"""
# A token signs in only while it is not revoked and its user is neither deleted nor inactive.
_USABLE = "t.revoked_at IS NULL AND u.deleted_at IS NULL AND u.active"


def _user(conn: sa.Connection, email: str) -> sa.Row:
    row = conn.execute(
        sa.text("SELECT id, email FROM users WHERE lower(email) = lower(:e) AND deleted_at IS NULL"), {"e": email}
    ).first()
    if row is None:
        raise NotFoundError(f"no user {email!r}; add one with `crm users add {email}`")
    return row


def issue(engine: sa.Engine, email: str, *, by: uuid.UUID | str | None = None) -> tuple[SignInToken, str]:
    """A new token for the user with this e-mail: (the token as listed, the token itself)."""
    secret = secrets.token_urlsafe(32)
    actor = by or SYSTEM_USER_ID
    with engine.begin() as conn:
        user = _user(conn, email)
        token_id = conn.execute(
            sa.text("INSERT INTO sign_in_tokens (user_id, token_hash, created_by) VALUES (:u, :h, :by) RETURNING id"),
            {"u": user.id, "h": token_hash(secret), "by": actor},
        ).scalar_one()
        audit.record(
            conn,
            user_id=actor,
            entity=ENTITY,
            entity_id=token_id,
            operation="create",
            before=None,
            after=json.dumps({"user": user.email}),
        )
        issued = _read(conn, "t.id = :id", {"id": token_id})[0]
    return issued, secret


def verify(engine: sa.Engine, token: str) -> SignInToken | None:
    """The usable token ``token`` is, or None (unknown, revoked, or its user gone)."""
    if not token:
        return None
    with engine.connect() as conn:
        found = _read(conn, f"t.token_hash = :h AND {_USABLE}", {"h": token_hash(token)})
    return found[0] if found else None


def usable(engine: sa.Engine, token_id: uuid.UUID | str) -> SignInToken | None:
    """The token with this id while it still signs in (a session's check), else None."""
    try:
        token_id = uuid.UUID(str(token_id))
    except ValueError:
        return None
    with engine.connect() as conn:
        found = _read(conn, f"t.id = :id AND {_USABLE}", {"id": token_id})
    return found[0] if found else None


def record_sign_in(
    engine: sa.Engine, token: SignInToken, *, remote_ip: str | None = None, user_agent: str | None = None
) -> None:
    """A browser traded ``token`` for a session: the audit row, and the token's last use."""
    with engine.begin() as conn:
        used = conn.execute(
            sa.text("UPDATE sign_in_tokens SET last_used_at = now() WHERE id = :id RETURNING last_used_at"),
            {"id": token.id},
        ).scalar_one()
        audit.record(
            conn,
            user_id=token.user_id,
            entity=ENTITY,
            entity_id=token.id,
            operation="update",
            before=json.dumps({"last_used_at": token.last_used_at}, default=str),
            after=json.dumps(
                {"event": SIGN_IN, "last_used_at": used, "remote_ip": remote_ip, "user_agent": user_agent}, default=str
            ),
        )


def revoke(
    engine: sa.Engine, email: str, token_id: uuid.UUID | str | None = None, *, by: uuid.UUID | str | None = None
) -> list[SignInToken]:
    """Revoke every active token of the user (or only ``token_id``); returns those revoked.
    Their sessions end at the next request."""
    actor = by or SYSTEM_USER_ID
    with engine.begin() as conn:
        user = _user(conn, email)
        where, params = "user_id = :u AND revoked_at IS NULL", {"u": user.id}
        if token_id is not None:
            where += " AND id = :id"
            params["id"] = _token_id(token_id)
        rows = conn.execute(
            sa.text(f"UPDATE sign_in_tokens SET revoked_at = now() WHERE {where} RETURNING id, revoked_at"), params
        ).all()
        if token_id is not None and not rows:
            raise NotFoundError(f"{email} has no active token {token_id}")
        for revoked, at in rows:
            audit.record(
                conn,
                user_id=actor,
                entity=ENTITY,
                entity_id=revoked,
                operation="update",
                before=json.dumps({"revoked_at": None}),
                after=json.dumps({"event": REVOKE, "user": user.email, "revoked_at": at}, default=str),
            )
        ids = [r.id for r in rows]
        return _read(conn, "t.id = ANY(:ids)", {"ids": list(ids)}) if ids else []


def list_tokens(engine: sa.Engine, email: str | None = None, *, include_revoked: bool = False) -> list[SignInToken]:
    """Tokens, newest first: one user's (``email``) or everyone's; revoked ones on request."""
    where, params = ["true"], {}
    if not include_revoked:
        where.append("t.revoked_at IS NULL")
    with engine.connect() as conn:
        if email is not None:
            where.append("t.user_id = :u")
            params["u"] = _user(conn, email).id
        return _read(conn, " AND ".join(where), params)


def _token_id(value) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise SignInError(f"{value!r} is not a token id (a uuid from `crm users token --list`)") from None


def _read(conn: sa.Connection, where: str, params: dict) -> list[SignInToken]:
    rows = conn.execute(sa.text(f"{_SELECT} WHERE {where} ORDER BY t.created_at DESC, t.id"), params)
    return [SignInToken(*row) for row in rows]
