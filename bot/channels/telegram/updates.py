"""Telegram handlers (python-telegram-bot): thin, they parse, call the core and render.

Handler order (group 0, first match wins):

1. button presses (callback queries), from any private chat;
2. replies in the staff chat (hand-over answers), only when a staff chat is set;
3. text and commands in private chats;
4. anything else in private chats (photos, stickers, voice): a polite text reply.

Messages in other groups are ignored. Errors reach ``on_error``.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

from telegram import CallbackQuery, Message, ReplyParameters, Update
from telegram.constants import ParseMode
from telegram.error import BadRequest, TelegramError
from telegram.ext import (
    Application,
    CallbackContext,
    CallbackQueryHandler,
    ExtBot,
    MessageHandler,
    filters,
)

from bot.channels.telegram.render import CHANNEL, incoming_from_message, render, send_reply
from bot.conversation import APOLOGY, UNSUPPORTED, Conversation, Incoming
from bot.replies import Reply

__all__ = ["BotContext", "BotServices", "register_handlers"]

log = logging.getLogger(__name__)


class BotServices:
    """What the handlers need, kept as the Application's typed ``bot_data``."""

    def __init__(self) -> None:
        self.conversation: Conversation | None = None


class BotContext(CallbackContext[ExtBot[None], dict[Any, Any], dict[Any, Any], BotServices]):
    """Handler context exposing the services as typed properties."""

    @property
    def conversation(self) -> Conversation:
        """The conversation core."""
        conversation = self.bot_data.conversation
        if conversation is None:
            raise RuntimeError("the conversation core is not wired into the Telegram application")
        return conversation


async def _send_all(context: BotContext, chat_id: int, replies: list[Reply]) -> None:
    for reply in replies:
        await send_reply(context.bot, chat_id, reply)


async def on_text(update: Update, context: BotContext) -> None:
    """Answers a member's question or command in a private chat."""
    message = update.effective_message
    if message is None:
        return
    replies = await context.conversation.handle(
        incoming_from_message(message, update.effective_user)
    )
    await _send_all(context, message.chat_id, replies)


async def on_staff_reply(update: Update, context: BotContext) -> None:
    """Relays a staff member's reply to a hand-over post back to the member."""
    message = update.effective_message
    if message is None:
        return
    replies = await context.conversation.handle(
        incoming_from_message(message, update.effective_user)
    )
    quoted = ReplyParameters(message.message_id)  # the confirmation answers the staff's reply
    for reply in replies:  # no buttons in the staff chat
        await send_reply(
            context.bot, message.chat_id, replace(reply, buttons=()), reply_parameters=quoted
        )


async def on_button(update: Update, context: BotContext) -> None:
    """Handles a button press: answers the query, edits or sends the replies."""
    query = update.callback_query
    if query is None or query.from_user is None:
        return
    chat_id = query.message.chat.id if query.message is not None else query.from_user.id
    incoming = Incoming(
        channel=CHANNEL,
        chat_id=str(chat_id),
        user_id=str(query.from_user.id),
        text=_pressed_label(query),
        display_name=query.from_user.full_name,
        payload=query.data or "",
        bot_id=str(context.bot.id),
    )
    replies = await context.conversation.handle(incoming)
    notices = [r for r in replies if r.notice]
    await query.answer(notices[0].text[:200] if notices else None)
    for reply in replies:
        if reply.notice:
            continue
        if reply.edit and query.message is not None:
            await _edit(query, reply, context)
        else:
            await _send_all(context, chat_id, [reply])


async def _edit(query: CallbackQuery, reply: Reply, context: BotContext) -> None:
    parts = render(reply)
    if len(parts) != 1 or reply.image is not None:  # no one text message: send instead
        await _send_all(context, query.message.chat.id, [replace(reply, edit=False)])  # type: ignore[union-attr]
        return
    text, markup = parts[0]
    try:
        await query.edit_message_text(text, parse_mode=ParseMode.HTML, reply_markup=markup)
    except BadRequest as exc:
        if "not modified" not in exc.message.lower():
            raise


def _pressed_label(query: CallbackQuery) -> str:
    markup = query.message.reply_markup if isinstance(query.message, Message) else None
    for row in markup.inline_keyboard if markup is not None else ():
        for button in row:
            if button.callback_data == query.data:
                return str(button.text)
    return ""


async def on_unsupported(update: Update, context: BotContext) -> None:
    """Tells the member that only text is understood (photos, stickers, voice...)."""
    if update.effective_message is not None:
        await update.effective_message.reply_text(UNSUPPORTED)


async def on_error(update: object, context: BotContext) -> None:
    """Logs the fault with its traceback; the member gets a short apology."""
    log.error("Telegram handler fault", exc_info=context.error)
    if isinstance(update, Update) and update.effective_chat is not None:
        if update.effective_chat.type != "private":
            return
        try:
            await context.bot.send_message(update.effective_chat.id, APOLOGY)
        except TelegramError:
            log.warning("could not send the apology to chat %s", update.effective_chat.id)


def register_handlers(
    application: Application[Any, BotContext, Any, Any, BotServices, Any],
    staff_chat_id: int | None,
) -> None:
    """Adds the handlers in their documented order, and the error handler."""
    private = filters.ChatType.PRIVATE
    application.add_handler(CallbackQueryHandler(on_button))
    if staff_chat_id is not None:
        staff_chat = filters.Chat(chat_id=staff_chat_id)
        application.add_handler(MessageHandler(staff_chat & filters.REPLY, on_staff_reply))
    application.add_handler(MessageHandler(private & filters.TEXT, on_text))
    application.add_handler(MessageHandler(private & ~filters.TEXT, on_unsupported))
    application.add_error_handler(on_error)
