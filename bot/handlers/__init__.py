"""Channel-neutral feature handlers: one module per command family.

Each module declares one :class:`bot.handlers.base.Handler` (its commands,
button prefixes and ``/help`` lines) named ``HANDLER``. ``HANDLERS`` is the
one list the router serves; its order is the order of the lines in ``/help``.
"""

from __future__ import annotations

from typing import Final

from bot.handlers import (
    admin,
    broadcast,
    deadlines,
    faq,
    handover,
    law,
    notifications,
    privacy,
    profile,
    questions,
    reminders,
    review,
    roles,
    share,
    start,
    training,
)
from bot.handlers.base import Handler

__all__ = ["HANDLERS"]

HANDLERS: Final[tuple[Handler, ...]] = (
    start.HANDLER,
    questions.HANDLER,
    faq.HANDLER,
    law.HANDLER,
    profile.HANDLER,
    deadlines.HANDLER,
    reminders.HANDLER,
    training.HANDLER,
    notifications.HANDLER,
    handover.HANDLER,
    privacy.HANDLER,
    roles.HANDLER,
    broadcast.HANDLER,
    review.HANDLER,
    share.HANDLER,
    admin.HANDLER,
)
