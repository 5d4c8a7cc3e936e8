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
import functools
import hashlib
import hmac
import logging
import re
from collections.abc import Awaitable, Callable, Collection
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.channels.webhooks import read_body
from bot.clock import VIETNAM, format_timestamp
from bot.nlu_model.registry import RegistryError
from bot.store.admin_sessions import SESSION_LIFETIME, AdminSessionStore, Staff
from bot.store.broadcasts import BroadcastError
from bot.store.roles import ROLE_LABELS, STAFF_ROLES
from bot.web.dashboard import (
    ADMIN_ONLY,
    PAGES,
    PERIODS,
    Dashboard,
    Page,
    PageData,
    Query,
    cell,
    number,
    page_named,
    to_csv,
    visible,
)
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


def _board(request: Request) -> Dashboard:
    board: Dashboard = request.app.state.dashboard
    return board


def refusal(message: str, *, retry: bool, status: int = 403) -> HTMLResponse:
    """The page of a refused request (no data), inviting a new login when ``retry``."""
    body = render("admin_page.html", title="Không vào được", message=message, retry=retry)
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
    """``GET /admin/login?token=...``: open a session, then on to ``/admin``.

    The link is opened from a chat app, another site: a browser does not send a
    ``SameSite=Strict`` cookie on that navigation nor on a redirect it causes. So the
    answer is a page (200) that sets the cookie and moves on by itself (a meta refresh
    is the page's own navigation, which does send it), with a link as well.
    """
    auth = _auth(request)
    token = request.query_params.get("token", "")
    staff = await asyncio.to_thread(auth.store.redeem, token)
    if staff is None:
        return refusal(_BAD_LINK, retry=True)
    log.info("admin session opened for member %d (%s)", staff.member_id, staff.role)
    response = HTMLResponse(render("admin_welcome.html", title="Đã đăng nhập", target=ADMIN_PREFIX))
    auth.set_cookie(response, await auth.cookie_value(staff.session_id))
    return response


def _page_route(page: Page) -> Route:
    """``GET /admin/<slug>``: the page rendered for the session's staff member."""

    async def show(request: Request) -> Response:
        staff = await require(request, page.roles)
        if isinstance(staff, Response):
            return staff
        query, data = await _built(request, page, staff)
        body = render(
            page.template,
            **await _frame(request, staff, page, query),
            data=data,
            flash=_flash(request),
        )
        return HTMLResponse(body)

    return Route(page.path, show, methods=["GET"], name=f"admin-{page.name}")


async def _frame(request: Request, staff: Staff, page: Page, query: Query) -> dict[str, Any]:
    """What every dashboard page's frame shows: menu, who, filters, CSRF token."""
    board = _board(request)
    return {
        "title": page.title,
        "page": page,
        "pages": visible(PAGES, staff.role),
        "staff": staff,
        "role_label": ROLE_LABELS[staff.role],
        "expires": format_timestamp(staff.expires_at),
        "csrf": await _auth(request).csrf(staff),
        "query": query,
        "periods": PERIODS,
        "provinces": board.options.choices("province"),
        "cell": cell,
        "is_admin": staff.role in ADMIN_ONLY,
    }


async def _built(request: Request, page: Page, staff: Staff) -> tuple[Query, PageData]:
    """The request's window and filter, and the page's data for them (built off the loop)."""
    board = _board(request)
    query = Query.parse(request.query_params, board.options, board.clock())
    return query, await asyncio.to_thread(page.build, board, query, staff)


async def download(request: Request) -> Response:
    """``GET /admin/csv/<page>/<table>.csv``: one table of a page, with the page's role check."""
    page = page_named(request.path_params["page"])
    staff = await require(request, page.roles if page is not None else STAFF_ROLES)
    if isinstance(staff, Response):
        return staff
    if page is None:
        return refusal("Không có bảng này.", retry=False, status=404)
    query, data = await _built(request, page, staff)
    table = data.table(request.path_params["table"])
    if table is None:
        return refusal("Không có bảng này.", retry=False, status=404)
    day = _board(request).clock().astimezone(VIETNAM).date().isoformat()
    filename = f"{page.name}-{table.name}-{query.days}d-{day}.csv"
    return Response(
        to_csv(table),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


Endpoint = Callable[[Request], Awaitable[Response]]
Action = Callable[[Request, Staff, dict[str, str]], Awaitable[Response]]


def _action(roles: Collection[str]) -> Callable[[Action], Endpoint]:
    """An admin POST endpoint from ``action(request, staff, form)``.

    The action runs only for a session of one of ``roles`` whose form carries the
    session's CSRF token; anything else gets the 403 of :func:`require` or
    :func:`checked_form`.
    """

    def wrap(action: Action) -> Endpoint:
        @functools.wraps(action)
        async def endpoint(request: Request) -> Response:
            staff = await require(request, roles)
            if isinstance(staff, Response):
                return staff
            form = await checked_form(request, staff)
            if isinstance(form, Response):
                return form
            return await action(request, staff, form)

        return endpoint

    return wrap


@_action(STAFF_ROLES)
async def stop_broadcast(request: Request, staff: Staff, form: dict[str, str]) -> Response:
    """``POST /admin/broadcasts/<id>/stop``: cancel a broadcast's pending messages."""
    store = _board(request).broadcasts
    broadcast_id = int(request.path_params["broadcast_id"])
    if store is None:
        return _back("/admin/broadcasts", "off")
    try:
        dropped = await asyncio.to_thread(store.cancel, broadcast_id)
    except BroadcastError:
        return _back("/admin/broadcasts", "not_stoppable", broadcast_id)
    log.info(
        "broadcast %d stopped from the dashboard by member %d (%d dropped)",
        broadcast_id,
        staff.member_id,
        dropped,
    )
    return _back("/admin/broadcasts", "stopped", broadcast_id, dropped)


@_action(ADMIN_ONLY)
async def rollback(request: Request, staff: Staff, form: dict[str, str]) -> Response:
    """``POST /admin/models/rollback``: deploy the previous model (or the form's ``to``)."""
    registry = _board(request).registry
    if registry is None:
        return _back("/admin/models", "off")
    to = form.get("to") or None
    try:
        _, new = await asyncio.to_thread(registry.rollback, _who(staff), to)
    except RegistryError:
        return _back("/admin/models", "no_rollback")
    log.info(
        "model %s deployed by rollback from the dashboard (member %d)", new.version, staff.member_id
    )
    return _back("/admin/models", "rolled_back", version=new.version)


@_action(ADMIN_ONLY)
async def decide(request: Request, staff: Staff, form: dict[str, str]) -> Response:
    """``POST /admin/review/<group>``: label a review group with an intent, or set it aside."""
    chat = _board(request).review
    if chat is None:
        return _back("/admin/review", "off")
    group_id = int(request.path_params["group_id"])
    group = await asyncio.to_thread(chat.queue.group, group_id)
    if group is None:
        return _back("/admin/review", "gone", group_id)
    action = form.get("action", "")
    try:
        if action == "label":
            await asyncio.to_thread(chat.queue.label, group, form.get("intent", ""), _who(staff))
        else:
            await asyncio.to_thread(chat.queue.decide, group, action, _who(staff))
    except ValueError:
        return _back("/admin/review", "bad_decision", group_id)
    return _back("/admin/review", "decided", group_id, group.count)


def _who(staff: Staff) -> str:
    """How a staff member is named in the registry and the reviewed data."""
    return f"{staff.name or 'quản trị viên'} (#{staff.member_id}, web)"


_FLASHES: Final = {
    "stopped": "Đã dừng thông báo #{id}: {n} tin chưa gửi đã được bỏ.",
    "not_stoppable": "Thông báo #{id} không dừng được (không có hoặc đã kết thúc).",
    "rolled_back": "Đã triển khai lại mô hình {version}; trợ lý sẽ nạp trong giây lát.",
    "no_rollback": "Không có mô hình nào để quay lui.",
    "decided": "Đã ghi quyết định cho nhóm #{id} ({n} câu hỏi).",
    "gone": "Nhóm #{id} không còn trong hàng chờ.",
    "bad_decision": "Quyết định cho nhóm #{id} không hợp lệ.",
    "off": "Tính năng này đang tắt.",
}
_VERSION: Final = re.compile(r"^[A-Za-z0-9._-]{1,40}$")


def _back(path: str, code: str, id_: int = 0, n: int = 0, version: str = "") -> Response:
    """303 to ``path`` with the outcome for its notice (codes and numbers, never text)."""
    query = urlencode({"done": code, "id": id_, "n": n, "v": version})
    return RedirectResponse(f"{path}?{query}", status_code=303)


def _flash(request: Request) -> str:
    """The notice of an action just done, from the query string's code and numbers."""
    params = request.query_params
    template = _FLASHES.get(params.get("done", ""))
    if template is None:
        return ""
    version = params.get("v", "")
    try:
        return template.format(
            id=int(params.get("id", "0")),
            n=number(int(params.get("n", "0"))),
            version=version if _VERSION.match(version) else "?",
        )
    except ValueError:
        return ""


@_action(STAFF_ROLES)
async def logout(request: Request, staff: Staff, form: dict[str, str]) -> Response:
    """``POST /admin/logout``: end the session (the form's CSRF token checked)."""
    auth = _auth(request)
    await asyncio.to_thread(auth.store.logout, staff.session_id)
    response = refusal("Bạn đã đăng xuất.", retry=True, status=200)
    auth.clear_cookie(response)
    return response


def admin_routes() -> list[BaseRoute]:
    """The login, the dashboard's pages, CSV downloads and actions, the logout.

    ``app.state.admin_auth`` (an :class:`AdminAuth`) and ``app.state.dashboard`` (a
    :class:`bot.web.dashboard.Dashboard`) must be set.
    """
    return [
        Route(f"{ADMIN_PREFIX}/login", login, methods=["GET"]),
        *(_page_route(page) for page in PAGES),
        Route(f"{ADMIN_PREFIX}/csv/{{page}}/{{table}}.csv", download, methods=["GET"]),
        Route(
            f"{ADMIN_PREFIX}/broadcasts/{{broadcast_id:int}}/stop", stop_broadcast, methods=["POST"]
        ),
        Route(f"{ADMIN_PREFIX}/models/rollback", rollback, methods=["POST"]),
        Route(f"{ADMIN_PREFIX}/review/{{group_id:int}}", decide, methods=["POST"]),
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
