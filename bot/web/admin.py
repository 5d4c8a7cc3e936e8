"""The admin pages' login and session machinery: the cookie, CSRF and the role check.

``/quantri`` in chat gives staff and admins a one-time link to ``/admin/login``, which
opens a session (:mod:`bot.store.admin_sessions`) and sets the cookie ``coopbot_admin``:
``<session id>.<HMAC-SHA256 of it>`` with the key kept in the database, ``HttpOnly``,
``SameSite=Strict``, ``Path=/admin``, ``Secure`` when ``PUBLIC_BASE_URL`` is https.

Every admin page starts with :func:`require`, which answers a Staff (the session's member
with their *current* role) or the refusal to return; every POST also passes
:func:`checked_form`, which compares the form's ``csrf`` field with the session's token
in constant time. :class:`NoStore` marks every ``/admin`` response ``no-store``.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
from collections.abc import Collection
from typing import Final
from urllib.parse import parse_qsl

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.channels.webhooks import read_body
from bot.clock import format_timestamp
from bot.store.admin_sessions import SESSION_LIFETIME, AdminSessionStore, Staff
from bot.store.roles import ROLE_LABELS, STAFF_ROLES
from bot.web.pages import render

__all__ = [
    "ADMIN_PREFIX",
    "COOKIE",
    "AdminAuth",
    "NoStore",
    "admin_routes",
    "checked_form",
    "refusal",
    "require",
]

log = logging.getLogger(__name__)

COOKIE: Final = "coopbot_admin"
ADMIN_PREFIX: Final = "/admin"
MAX_FORM: Final = 16 * 1024
_CSRF_FIELD: Final = "csrf"
_LOGIN_AGAIN: Final = "Phiên đăng nhập không hợp lệ hoặc đã hết hạn."
_BAD_LINK: Final = "Liên kết đăng nhập không hợp lệ, đã hết hạn hoặc đã được dùng."
_NOT_ALLOWED: Final = "Vai trò của bạn không được xem trang này."
_BAD_FORM: Final = "Biểu mẫu đã hết hạn hoặc không hợp lệ. Hãy tải lại trang rồi thử lại."


class AdminAuth:
    """Signs and checks session cookies and CSRF tokens; kept in ``app.state.admin_auth``."""

    def __init__(self, store: AdminSessionStore, public_url: str) -> None:
        """Uses ``store``; cookies are ``Secure`` when ``public_url`` is https."""
        self.store = store
        self.secure = public_url.lower().startswith("https://")
        self._key: bytes | None = None

    async def key(self) -> bytes:
        """The signing key (read from the database once, made there on first use)."""
        if self._key is None:
            self._key = await asyncio.to_thread(self.store.cookie_key)
        return self._key

    async def cookie_value(self, session_id: str) -> str:
        """The cookie for a session: its id and the id's signature."""
        return f"{session_id}.{_mac(await self.key(), 'session', session_id)}"

    async def session_of(self, cookie: str | None) -> str | None:
        """The session id of a correctly signed cookie; None for anything else."""
        if not cookie or cookie.count(".") != 1:
            return None
        session_id, signature = cookie.split(".")
        expected = _mac(await self.key(), "session", session_id)
        if not hmac.compare_digest(signature.encode(), expected.encode()):
            return None
        return session_id

    async def csrf(self, staff: Staff) -> str:
        """The session's CSRF token, for the hidden ``csrf`` field of every form."""
        return _mac(await self.key(), "csrf", staff.session_id)

    def set_cookie(self, response: Response, value: str) -> None:
        """Put the session cookie on ``response``."""
        response.set_cookie(
            COOKIE,
            value,
            max_age=int(SESSION_LIFETIME.total_seconds()),
            path=ADMIN_PREFIX,
            secure=self.secure,
            httponly=True,
            samesite="strict",
        )

    def clear_cookie(self, response: Response) -> None:
        """Tell the browser to forget the session cookie."""
        response.delete_cookie(
            COOKIE, path=ADMIN_PREFIX, secure=self.secure, httponly=True, samesite="strict"
        )


def _mac(key: bytes, purpose: str, value: str) -> str:
    return hmac.new(key, f"{purpose}\x00{value}".encode(), hashlib.sha256).hexdigest()


def _auth(request: Request) -> AdminAuth:
    auth: AdminAuth = request.app.state.admin_auth
    return auth


def refusal(message: str, *, retry: bool, status: int = 403) -> HTMLResponse:
    """The page of a refused request (no data), inviting a new login when ``retry``."""
    body = render(
        "admin_page.html", title="Không vào được", message=message, retry=retry, staff=None
    )
    return HTMLResponse(body, status_code=status)


async def require(request: Request, roles: Collection[str]) -> Staff | Response:
    """The staff member of the request's session when their current role is in ``roles``.

    Otherwise the 403 response to return at once: for a missing, forged, expired or
    revoked session (which also clears the cookie), or a role not in ``roles``.
    """
    auth = _auth(request)
    session_id = await auth.session_of(request.cookies.get(COOKIE))
    staff = None
    if session_id is not None:
        staff = await asyncio.to_thread(auth.store.current, session_id)
    if staff is None:
        response = refusal(_LOGIN_AGAIN, retry=True)
        if COOKIE in request.cookies:
            auth.clear_cookie(response)
        return response
    if staff.role not in roles:
        log.warning("admin page %s refused to member %d", request.url.path, staff.member_id)
        return refusal(_NOT_ALLOWED, retry=False)
    return staff


async def checked_form(request: Request, staff: Staff) -> dict[str, str] | Response:
    """The fields of a POSTed form whose ``csrf`` field is the session's; else a 403."""
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    body = await read_body(request, MAX_FORM)
    if media != "application/x-www-form-urlencoded" or body is None:
        return refusal(_BAD_FORM, retry=False)
    try:
        fields = dict(parse_qsl(body.decode(), keep_blank_values=True))
    except (UnicodeDecodeError, ValueError):
        return refusal(_BAD_FORM, retry=False)
    given = fields.get(_CSRF_FIELD, "").encode()
    expected = (await _auth(request).csrf(staff)).encode()
    if not hmac.compare_digest(given, expected):
        log.warning("admin POST %s without a valid CSRF token", request.url.path)
        return refusal(_BAD_FORM, retry=False)
    return fields


async def login(request: Request) -> Response:
    """``GET /admin/login?token=...``: open a session and go to ``/admin``."""
    auth = _auth(request)
    token = request.query_params.get("token", "")
    staff = await asyncio.to_thread(auth.store.redeem, token)
    if staff is None:
        return refusal(_BAD_LINK, retry=True)
    log.info("admin session opened for member %d (%s)", staff.member_id, staff.role)
    response = RedirectResponse(ADMIN_PREFIX, status_code=303)
    auth.set_cookie(response, await auth.cookie_value(staff.session_id))
    return response


async def home(request: Request) -> Response:
    """``GET /admin``: who is logged in, with which role, and the logout button."""
    staff = await require(request, STAFF_ROLES)
    if isinstance(staff, Response):
        return staff
    body = render(
        "admin_page.html",
        title="Trang quản trị",
        staff=staff,
        role_label=ROLE_LABELS[staff.role],
        expires=format_timestamp(staff.expires_at),
        csrf=await _auth(request).csrf(staff),
        message="",
        retry=False,
    )
    return HTMLResponse(body)


async def logout(request: Request) -> Response:
    """``POST /admin/logout``: end the session (the form's CSRF token checked)."""
    staff = await require(request, STAFF_ROLES)
    if isinstance(staff, Response):
        return staff
    form = await checked_form(request, staff)
    if isinstance(form, Response):
        return form
    auth = _auth(request)
    await asyncio.to_thread(auth.store.logout, staff.session_id)
    response = refusal("Bạn đã đăng xuất.", retry=True, status=200)
    auth.clear_cookie(response)
    return response


def admin_routes() -> list[BaseRoute]:
    """The login, the home page and the logout (``app.state.admin_auth`` must be set)."""
    return [
        Route(f"{ADMIN_PREFIX}/login", login, methods=["GET"]),
        Route(ADMIN_PREFIX, home, methods=["GET"]),
        Route(f"{ADMIN_PREFIX}/logout", logout, methods=["POST"]),
    ]


class NoStore:
    """ASGI middleware: every response under ``/admin`` gets ``Cache-Control: no-store``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Passes the request on; marks the response start of an admin path."""
        path = scope.get("path", "")
        if scope["type"] != "http" or not (
            path == ADMIN_PREFIX or path.startswith(f"{ADMIN_PREFIX}/")
        ):
            await self.app(scope, receive, send)
            return

        async def send_no_store(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message)["Cache-Control"] = "no-store"
            await send(message)

        await self.app(scope, receive, send_no_store)
