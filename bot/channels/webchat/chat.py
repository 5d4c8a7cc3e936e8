"""The local web chat: a JSON API over the conversation core, and an inbox for later replies.

A browser session is identified by a random id the page keeps in
``localStorage``; it is the member's user id and chat id on the ``web``
channel. Replies are plain text; the page renders them with ``textContent``,
so nothing a member or the knowledge base writes is ever parsed as HTML. A
reply's image travels as ``{"url", "alt"}``: the page shows it from our own
server (``Image.url`` is a path on it; the PNG bytes never go into the JSON).

Messages that arrive later (a staff answer after a hand-over) wait in the
database (``bot.store.pushes``, at most 50 per session, for a day) until
the page's long poll fetches them: no restart, other process or flood of new
sessions loses them. Memory holds only wake-ups for the polls waiting now and
per-session rate counters.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any

from bot.channels.ratelimit import KeyedBuckets, TokenBucket
from bot.conversation import Conversation, Incoming
from bot.replies import Reply
from bot.store.pushes import PushStore

__all__ = ["CHANNEL", "Floodgate", "WebChat", "WebChatError", "WebLimits"]

CHANNEL = "web"
SESSION_PATTERN = re.compile(r"^[A-Za-z0-9_-]{16,64}$")
MAX_TEXT_CHARS = 4000
_MAX_SESSIONS = 10_000  # rate counters kept in memory; the oldest go first
_WAITERS_MAX = 2_000  # long polls waiting at once; more get an empty answer at once
_RECHECK_S = 1.0  # a waiting poll looks in the database this often (another process may push)
_RATE_WINDOW_S = 10.0
_RATE_MAX = 20


class WebChatError(ValueError):
    """A request the web chat refuses; ``status`` is the HTTP status to answer with."""

    def __init__(self, status: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class WebLimits:
    """Flood limits: new sessions and messages per client address and for everyone."""

    new_sessions_per_ip_hour: int = 60
    new_sessions_per_hour: int = 3000
    messages_per_ip_minute: int = 120
    messages_per_second: int = 50


_TOO_FAST = "Bạn gửi nhanh quá, vui lòng chờ một chút rồi gửi tiếp."
_BUSY_SECONDS = "Hệ thống đang bận, bạn vui lòng gửi lại sau ít giây."
_TOO_MANY_SESSIONS = "Có quá nhiều phiên trò chuyện mới từ địa chỉ của bạn; vui lòng thử lại sau."
_BUSY_MINUTES = "Hệ thống đang bận, bạn vui lòng thử lại sau ít phút."


class Floodgate:
    """The token buckets behind ``WebLimits`` (the public FAQ's search box counts as messages)."""

    def __init__(self, limits: WebLimits) -> None:
        self.ip_sessions = KeyedBuckets(
            limits.new_sessions_per_ip_hour / 3600, limits.new_sessions_per_ip_hour
        )
        self.sessions = TokenBucket(
            limits.new_sessions_per_hour / 3600, limits.new_sessions_per_hour
        )
        self.ip_messages = KeyedBuckets(
            limits.messages_per_ip_minute / 60, limits.messages_per_ip_minute
        )
        self.messages = TokenBucket(limits.messages_per_second, 2 * limits.messages_per_second)

    def message(self, client: str) -> None:
        """Takes a message token for ``client``; raises ``WebChatError`` (429/503) when out."""
        mine = self.ip_messages.get(client)
        _require(mine.take(), mine, 429, _TOO_FAST)
        _require(self.messages.take(), self.messages, 503, _BUSY_SECONDS)

    def new_session(self, client: str) -> None:
        """Takes a new-session token for ``client``; raises ``WebChatError`` when out."""
        mine = self.ip_sessions.get(client)
        _require(mine.available(), mine, 429, _TOO_MANY_SESSIONS)
        _require(self.sessions.take(), self.sessions, 503, _BUSY_MINUTES)
        mine.take()


def _require(allowed: bool, bucket: TokenBucket, status: int, message: str) -> None:
    """Refuses with ``status`` and the bucket's wait when a limit said no."""
    if not allowed:
        raise WebChatError(status, message, bucket.retry_after())


@dataclass
class _Session:
    recent: deque[float] = field(default_factory=lambda: deque(maxlen=_RATE_MAX))


class WebChat:
    """Serves the web chat's API and is the ``web`` channel's sender."""

    def __init__(
        self, conversation: Conversation, pushes: PushStore, limits: WebLimits | None = None
    ) -> None:
        """Talks to ``conversation``; later messages wait in ``pushes``; floods meet ``limits``."""
        self._conversation = conversation
        self._pushes = pushes
        self.floodgate = Floodgate(limits or WebLimits())
        self._sessions: OrderedDict[str, _Session] = OrderedDict()
        self._waiting: dict[str, set[asyncio.Event]] = {}  # the polls waiting now, by session
        self._waiters = 0
        self._ids = itertools.count(1)
        self._closing = False

    def _session(self, session_id: str) -> _Session:
        session = self._sessions.get(session_id)
        if session is None:
            session = self._sessions[session_id] = _Session()
            while len(self._sessions) > _MAX_SESSIONS:
                self._sessions.popitem(last=False)
        else:
            self._sessions.move_to_end(session_id)
        return session

    def _to_json(self, reply: Reply) -> dict[str, Any]:
        image = reply.image
        return {
            "id": f"r{next(self._ids)}",
            "text": reply.text,
            "buttons": [{"label": b.label, "payload": b.payload} for b in reply.buttons],
            "citations": [
                {"document": c.document, "article": c.article, "id": c.ref_id}
                for c in reply.citations
            ],
            "notice": reply.notice,
            "edit": reply.edit,
            "image": {"url": image.url, "alt": image.alt} if image is not None else None,
        }

    async def post_message(self, body: Any, client: str = "local") -> dict[str, Any]:
        """Handles one typed message or button press; raises ``WebChatError`` on bad input.

        ``client``: the sender's address, for the per-address flood limits.
        """
        if not isinstance(body, dict):
            raise WebChatError(400, "Yêu cầu không hợp lệ (cần một đối tượng JSON).")
        session_id = _session_id(body.get("session"))
        text, payload, label = body.get("text"), body.get("payload"), body.get("label")
        if payload is not None:
            if not isinstance(payload, str) or not 1 <= len(payload) <= 64:
                raise WebChatError(400, "Lựa chọn không hợp lệ.")
            text = label if isinstance(label, str) else ""
        elif not isinstance(text, str) or not text.strip():
            raise WebChatError(400, "Bạn chưa nhập nội dung tin nhắn.")
        if len(text) > MAX_TEXT_CHARS:
            raise WebChatError(
                413, f"Tin nhắn dài quá {MAX_TEXT_CHARS} ký tự; bạn rút gọn giúp mình nhé."
            )
        self.floodgate.message(client)
        if session_id not in self._sessions and not await asyncio.to_thread(
            self._conversation.services.members.find, CHANNEL, session_id
        ):
            self.floodgate.new_session(client)
        self._check_rate(self._session(session_id))
        incoming = Incoming(
            channel=CHANNEL,
            chat_id=session_id,
            user_id=session_id,
            text=text,
            payload=payload,
            bot_id=CHANNEL,
        )
        replies = await self._conversation.handle(incoming)
        return {"replies": [self._to_json(r) for r in replies]}

    def _check_rate(self, session: _Session) -> None:
        now = time.monotonic()
        if len(session.recent) == _RATE_MAX and now - session.recent[0] < _RATE_WINDOW_S:
            raise WebChatError(429, "Bạn gửi nhanh quá, vui lòng chờ vài giây rồi gửi tiếp.")
        session.recent.append(now)

    async def wait_inbox(self, session_value: Any, timeout: float) -> dict[str, Any]:
        """Returns (and forgets) the session's waiting messages, waiting up to ``timeout`` s."""
        session_id = _session_id(session_value)
        replies = await asyncio.to_thread(self._pushes.take, session_id)
        if replies or self._closing or self._waiters >= _WAITERS_MAX:
            return {"replies": replies}
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        arrived = asyncio.Event()  # this poll's own wake-up (a session may have several tabs)
        self._waiting.setdefault(session_id, set()).add(arrived)
        self._waiters += 1
        try:
            while not replies and not self._closing:
                remaining = deadline - loop.time()
                if remaining <= 0:
                    break
                arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), min(remaining, _RECHECK_S))
                replies = await asyncio.to_thread(self._pushes.take, session_id)
        finally:
            self._waiters -= 1
            polls = self._waiting[session_id]
            polls.discard(arrived)
            if not polls:
                del self._waiting[session_id]
        return {"replies": replies}

    def close(self) -> None:
        """Ends every waiting long poll at once (on shutdown); later polls return at once."""
        self._closing = True
        for polls in self._waiting.values():
            for arrived in polls:
                arrived.set()

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        """Stores a reply for the session's page and wakes its poll (the ``web`` sender)."""
        message = self._to_json(reply)
        row_id = await asyncio.to_thread(self._pushes.add, chat_id, message)
        for arrived in self._waiting.get(chat_id, ()):
            arrived.set()
        return f"p{row_id}"


def _session_id(value: Any) -> str:
    if not isinstance(value, str) or not SESSION_PATTERN.match(value):
        raise WebChatError(400, "Phiên trò chuyện không hợp lệ; bạn tải lại trang nhé.")
    return value
