"""The channel-neutral ``send`` interface used by the core, reminders and broadcasts.

Exceptions::

    SendError                  any failed delivery
    ├── ChannelUnavailable     no sender for that channel is running
    ├── RecipientBlocked       the member blocked the bot or is gone: never retry
    └── RateLimited            the platform asked to wait ``retry_after`` seconds
"""

from __future__ import annotations

from collections import Counter
from typing import Protocol, runtime_checkable

from bot.replies import Reply

__all__ = [
    "ChannelSender",
    "ChannelUnavailable",
    "CopyingSender",
    "RateLimited",
    "RecipientBlocked",
    "SendError",
    "Senders",
]


class SendError(Exception):
    """A message could not be delivered."""


class ChannelUnavailable(SendError):
    """No sender is registered for the channel."""


class RecipientBlocked(SendError):
    """The recipient blocked the bot or no longer exists; retrying cannot help."""


class RateLimited(SendError):
    """The platform refused the send for now."""

    def __init__(self, retry_after: float, message: str = "rate limited") -> None:
        super().__init__(f"{message}; retry after {retry_after:g} s")
        self.retry_after = retry_after


class ChannelSender(Protocol):
    """Sends replies into chats of one channel."""

    async def send(self, chat_id: str, reply: Reply) -> str | None:
        """Sends ``reply``; returns the platform's id of the (last) message sent."""
        ...


@runtime_checkable
class CopyingSender(ChannelSender, Protocol):
    """A sender that can also copy a message from one chat to another (Telegram)."""

    async def copy(self, chat_id: str, from_chat_id: str, message_id: str) -> str | None:
        """Copies message ``message_id`` of ``from_chat_id`` into ``chat_id``; returns its id."""
        ...


class Senders:
    """The senders of the running channels, by channel name."""

    def __init__(self) -> None:
        self._senders: dict[str, ChannelSender] = {}
        # (channel, result) -> sends so far: "sent", "blocked", "rate_limited", "failed",
        # "unavailable" (read by the metrics).
        self.results: Counter[tuple[str, str]] = Counter()

    def register(self, channel: str, sender: ChannelSender) -> None:
        """Makes ``channel`` reachable through ``sender``."""
        self._senders[channel] = sender

    def unregister(self, channel: str) -> None:
        """Forgets the channel's sender (on shutdown)."""
        self._senders.pop(channel, None)

    def has(self, channel: str) -> bool:
        """True when the channel can be sent to."""
        return channel in self._senders

    async def send(self, channel: str, chat_id: str, reply: Reply) -> str | None:
        """Sends through the channel's sender; raises a ``SendError`` on failure."""
        sender = self._senders.get(channel)
        if sender is None:
            self.results[(channel, "unavailable")] += 1
            raise ChannelUnavailable(f"channel {channel!r} is not running")
        try:
            sent = await sender.send(chat_id, reply)
        except RecipientBlocked:
            self.results[(channel, "blocked")] += 1
            raise
        except RateLimited:
            self.results[(channel, "rate_limited")] += 1
            raise
        except Exception:
            self.results[(channel, "failed")] += 1
            raise
        self.results[(channel, "sent")] += 1
        return sent

    async def copy(
        self, channel: str, chat_id: str, from_chat_id: str, message_id: str
    ) -> str | None:
        """Copies a message (a staff member's file or photo) within one channel.

        Raises ``SendError`` when the channel's sender cannot copy messages.
        """
        sender = self._senders.get(channel)
        if sender is None:
            raise ChannelUnavailable(f"channel {channel!r} is not running")
        if not isinstance(sender, CopyingSender):
            raise SendError(f"channel {channel!r} cannot copy messages")
        return await sender.copy(chat_id, from_chat_id, message_id)
