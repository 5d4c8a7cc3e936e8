"""What the running assistant needs of a chat-app channel (Telegram, Zalo).

``bot.app`` builds each configured channel, starts it, registers its sender
under its name (the core, reminders and broadcasts reach its chats through
``bot.sending.Senders``), and on shutdown stops it and unregisters the sender;
``bot.web`` serves the routes it returns (its webhook).

The web chat is not such a channel: it is always on, its API routes need the
web app's POST checks (``bot.web``), and it must end its long polls before the
web server stops, so ``bot.app`` and ``bot.web`` handle it by name.
"""

from __future__ import annotations

from typing import Protocol

from starlette.routing import BaseRoute

from bot.sending import ChannelSender

__all__ = ["Channel"]


class Channel(Protocol):
    """A chat-app channel: receives updates (polling or webhook), sends replies."""

    @property
    def name(self) -> str:
        """The channel's name in ``Incoming.channel``, the members table and ``Senders``."""
        ...

    @property
    def sender(self) -> ChannelSender:
        """Sends replies into the channel's chats (registered while the channel runs)."""
        ...

    async def start(self) -> None:
        """Connects to the platform, resumes the inbox, sets the webhook or starts polling."""
        ...

    async def stop(self) -> None:
        """Stops receiving, finishes the updates in hand, closes the platform client."""
        ...

    def routes(self) -> list[BaseRoute]:
        """The web routes the channel serves (its webhook), mounted by ``bot.web``."""
        ...
