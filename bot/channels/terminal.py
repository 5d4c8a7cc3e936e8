"""The terminal channel (``coopbot chat``): the conversation core in a text console.

Every line typed goes to the core as an ``Incoming`` of channel ``terminal``,
like a message from any chat app; the replies come back as plain text, their
buttons as numbered lines (``  [1] ...``). Typing a number presses that button
(the core gets its payload, as from a Telegram keyboard); a number outside the
choices is answered here. ``/thoat`` (or ``/quit``, ``/exit``), end of input or
Ctrl+C ends the chat.

The terminal is a developer's window, not a member's: it offers no 👍/👎
buttons (those rate a member's answer for the review queue).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Final

from bot.conversation import Conversation, Incoming
from bot.replies import Button, Reply

__all__ = ["CHANNEL", "render", "run_terminal"]

CHANNEL: Final = "terminal"
BANNER: Final = "Trợ lý HTX — gõ câu hỏi; số để chọn gợi ý; /thoat để kết thúc.\n"
PROMPT: Final = "Bạn: "
QUIT: Final = frozenset({"/thoat", "/quit", "/exit"})
USER: Final = "local"  # the one person at the console: chat and user id
_FEEDBACK: Final = "fb:"  # the payloads of the 👍/👎 buttons


def _console(text: str) -> None:
    print(text, flush=True)


def render(replies: Sequence[Reply]) -> tuple[str, tuple[Button, ...]]:
    """The text of one turn and the buttons it offers, numbered across its replies."""
    parts: list[str] = []
    offered: list[Button] = []
    for reply in replies:
        buttons = [b for b in reply.buttons if not b.payload.startswith(_FEEDBACK)]
        lines = [reply.text]
        if reply.image is not None:  # a console shows no picture: where the web server serves it
            lines.append(f"[{reply.image.alt}: {reply.image.url}]")
        if buttons:
            lines.append("")
            lines += [f"  [{len(offered) + i}] {b.label}" for i, b in enumerate(buttons, 1)]
        offered += buttons
        parts.append("\n".join(lines))
    return "\n\n".join(parts), tuple(offered)


async def run_terminal(
    conversation: Conversation,
    *,
    read: Callable[[str], str] = input,
    write: Callable[[str], None] = _console,
) -> None:
    """Chats with ``conversation`` until the person quits.

    ``read(prompt)`` returns the next line typed (raising ``EOFError`` at the end
    of input), called in a worker thread; ``write(text)`` prints one block of
    output. Both default to the console.
    """
    write(BANNER)
    choices: tuple[Button, ...] = ()  # the buttons of the last turn that offered any
    while True:
        try:
            line = await asyncio.to_thread(read, PROMPT)
        except (EOFError, KeyboardInterrupt):
            write("")
            return
        line = line.strip()
        if line in QUIT:
            return
        picked: Button | None = None
        if choices and line.isascii() and line.isdigit():
            number = int(line)
            if not 1 <= number <= len(choices):
                write(f"\nTrợ lý: Hãy chọn một số từ 1 đến {len(choices)}.\n")
                continue
            picked = choices[number - 1]
        incoming = Incoming(
            channel=CHANNEL,
            chat_id=USER,
            user_id=USER,
            text=picked.label if picked is not None else line,
            payload=picked.payload if picked is not None else None,
            bot_id=CHANNEL,
        )
        replies = await conversation.handle(incoming)
        text, offered = render(replies)
        if not all(reply.notice for reply in replies):  # a "thank you" keeps the choices open
            choices = offered
        write(f"\nTrợ lý: {text}\n")
