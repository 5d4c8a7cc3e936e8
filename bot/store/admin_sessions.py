"""Passwordless logins to the admin pages: one-time login tokens, sessions, the server secret.

``/quantri`` in chat (staff and admin) asks :meth:`AdminSessionStore.issue_token` for a
one-time token (32 random bytes, URL-safe), valid ``TOKEN_LIFETIME`` and usable once;
the link ``/admin/login?token=...`` redeems it (:meth:`AdminSessionStore.redeem`), which
opens a session of ``SESSION_LIFETIME``. Only SHA-256 hashes of tokens and session ids are
stored, so a copy of the database opens nothing. Each request looks the session up with the
member's *current* role (:meth:`AdminSessionStore.current`): a staff member whose role was
taken away loses access at once. :meth:`AdminSessionStore.logout_all` ends every session
and drops every unused token (``coopbot users logout-all``).

The key that signs the session cookie is made once, at random, and kept in the database
(``admin_secrets``): a fresh install needs no setting, and every process of a scaled-out
deployment shares the same key.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

from sqlalchemy import (
    DateTime,
    ForeignKey,
    Integer,
    String,
    UniqueConstraint,
    delete,
    insert,
    select,
    update,
)
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Mapped, mapped_column

from bot.clock import aware, utcnow
from bot.store.db import Base, Member
from bot.store.roles import STAFF_ROLES

__all__ = [
    "SESSION_LIFETIME",
    "TOKEN_LIFETIME",
    "AdminLoginToken",
    "AdminSecret",
    "AdminSession",
    "AdminSessionStore",
    "Staff",
]

TOKEN_LIFETIME: Final = dt.timedelta(minutes=10)
SESSION_LIFETIME: Final = dt.timedelta(hours=12)
_COOKIE_KEY: Final = "cookie"
_MAX_SECRET_LENGTH: Final = 200  # a stored token or session id longer than this is no token


class AdminLoginToken(Base):
    """A one-time login link's token (its SHA-256 only), for one staff member or admin."""

    __tablename__ = "admin_login_tokens"
    __table_args__ = (UniqueConstraint("token_hash", name="uq_admin_login_tokens_token_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE", name="fk_admin_login_tokens_member"),
        index=True,
    )
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[dt.datetime | None] = mapped_column(DateTime(timezone=True))


class AdminSession(Base):
    """An open admin session (its id's SHA-256 only); ``role`` is the role at login."""

    __tablename__ = "admin_sessions"
    __table_args__ = (UniqueConstraint("session_hash", name="uq_admin_sessions_session_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_hash: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE", name="fk_admin_sessions_member"),
        index=True,
    )
    role: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


class AdminSecret(Base):
    """A server secret made once and shared by every process (the cookie signing key)."""

    __tablename__ = "admin_secrets"

    name: Mapped[str] = mapped_column(String(40), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[dt.datetime] = mapped_column(DateTime(timezone=True))


@dataclass(frozen=True, slots=True)
class Staff:
    """Who a valid admin session belongs to; ``role`` is the member's current role."""

    member_id: int
    name: str
    role: str
    login_role: str
    session_id: str
    expires_at: dt.datetime


def digest(secret: str) -> str:
    """The SHA-256 of a token or session id, as stored."""
    return hashlib.sha256(secret.encode()).hexdigest()


class AdminSessionStore:
    """Login tokens, sessions and the cookie key of the admin pages."""

    def __init__(self, engine: Engine, clock: Callable[[], dt.datetime] = utcnow) -> None:
        """Uses ``engine`` (migrated); ``clock`` gives the current time (tests move it)."""
        self._engine = engine
        self.clock = clock

    def issue_token(self, member_id: int) -> str:
        """A new one-time login token for the member (staff or admin, checked here too).

        Raises ``PermissionError`` for anyone else, ``LookupError`` for no such member.
        Expired tokens and sessions are cleared on the way.
        """
        now = self.clock()
        token = secrets.token_urlsafe(32)
        with self._engine.begin() as connection:
            role = connection.execute(
                select(Member.role).where(Member.id == member_id)
            ).scalar_one_or_none()
            if role is None:
                raise LookupError(f"no member {member_id}")
            if role not in STAFF_ROLES:
                raise PermissionError(f"member {member_id} is not staff")
            connection.execute(delete(AdminLoginToken).where(AdminLoginToken.expires_at <= now))
            connection.execute(delete(AdminSession).where(AdminSession.expires_at <= now))
            connection.execute(
                insert(AdminLoginToken).values(
                    token_hash=digest(token),
                    member_id=member_id,
                    created_at=now,
                    expires_at=now + TOKEN_LIFETIME,
                )
            )
        return token

    def redeem(self, token: str) -> Staff | None:
        """Open a session with a login token; None when it is unknown, expired or used.

        The token is marked used by one conditional UPDATE, so of two uses at the
        same time exactly one opens a session. A member who is no longer staff
        opens none.
        """
        if not token or len(token) > _MAX_SECRET_LENGTH:
            return None
        now = self.clock()
        hashed = digest(token)
        with self._engine.begin() as connection:
            claimed = connection.execute(
                update(AdminLoginToken)
                .where(
                    AdminLoginToken.token_hash == hashed,
                    AdminLoginToken.used_at.is_(None),
                    AdminLoginToken.expires_at > now,
                )
                .values(used_at=now)
            )
            if claimed.rowcount != 1:
                return None
            row = connection.execute(
                select(Member.id, Member.role, Member.display_name)
                .join(AdminLoginToken, AdminLoginToken.member_id == Member.id)
                .where(AdminLoginToken.token_hash == hashed)
            ).one_or_none()
            if row is None or row.role not in STAFF_ROLES:
                return None
            session_id = secrets.token_urlsafe(32)
            expires = now + SESSION_LIFETIME
            connection.execute(
                insert(AdminSession).values(
                    session_hash=digest(session_id),
                    member_id=row.id,
                    role=row.role,
                    created_at=now,
                    expires_at=expires,
                )
            )
        return Staff(row.id, row.display_name or "", row.role, row.role, session_id, expires)

    def current(self, session_id: str) -> Staff | None:
        """The staff member of an open session, with their current role; None otherwise.

        None for an unknown, expired or revoked session, and for a member who is
        no longer staff or admin.
        """
        if not session_id or len(session_id) > _MAX_SECRET_LENGTH:
            return None
        with self._engine.connect() as connection:
            row = connection.execute(
                select(
                    Member.id,
                    Member.role,
                    Member.display_name,
                    AdminSession.role.label("login_role"),
                    AdminSession.expires_at,
                )
                .join(AdminSession, AdminSession.member_id == Member.id)
                .where(
                    AdminSession.session_hash == digest(session_id),
                    AdminSession.expires_at > self.clock(),
                )
            ).one_or_none()
        if row is None or row.role not in STAFF_ROLES:
            return None
        return Staff(
            row.id,
            row.display_name or "",
            row.role,
            row.login_role,
            session_id,
            aware(row.expires_at),
        )

    def logout(self, session_id: str) -> bool:
        """End one session; False when there was none."""
        with self._engine.begin() as connection:
            gone = connection.execute(
                delete(AdminSession).where(AdminSession.session_hash == digest(session_id))
            )
        return gone.rowcount > 0

    def logout_all(self) -> tuple[int, int]:
        """End every session and drop every unused token: (sessions, tokens) removed."""
        with self._engine.begin() as connection:
            sessions = connection.execute(delete(AdminSession)).rowcount
            tokens = connection.execute(
                delete(AdminLoginToken).where(AdminLoginToken.used_at.is_(None))
            ).rowcount
        return sessions, tokens

    def cookie_key(self) -> bytes:
        """The key that signs session cookies: made at random on first use, then kept."""
        with self._engine.connect() as connection:
            value = connection.execute(
                select(AdminSecret.value).where(AdminSecret.name == _COOKIE_KEY)
            ).scalar_one_or_none()
        if value is not None:
            return bytes.fromhex(value)
        try:
            with self._engine.begin() as connection:
                connection.execute(
                    insert(AdminSecret).values(
                        name=_COOKIE_KEY, value=secrets.token_hex(32), created_at=self.clock()
                    )
                )
        except IntegrityError:
            pass  # another process made it first: use theirs
        with self._engine.connect() as connection:
            made = connection.execute(
                select(AdminSecret.value).where(AdminSecret.name == _COOKIE_KEY)
            ).scalar_one()
        return bytes.fromhex(made)
