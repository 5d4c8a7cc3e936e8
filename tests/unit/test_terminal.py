"""The terminal channel (``coopbot chat``) drives the conversation core like any channel."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.channels.terminal import CHANNEL, run_terminal
from bot.store.db import Member
from tests.unit.test_conversation import core, senders  # noqa: F401  (fixtures)


def chat(core, lines: list[str]) -> list[str]:  # noqa: F811
    """Types ``lines`` at the terminal; returns every block it printed."""
    typed = iter(lines)
    printed: list[str] = []

    def read(prompt: str) -> str:
        try:
            return next(typed)
        except StopIteration:
            raise EOFError from None

    asyncio.run(run_terminal(core, read=read, write=printed.append))
    return printed


def test_numbers_press_the_buttons_of_the_last_turn(core, sqlite_engine):  # noqa: F811
    printed = chat(core, ["/hoso", "1", "1", "99", "/thoat", "never read"])
    profile, first_step, province_chosen, out_of_range = printed[1:5]
    assert "Hồ sơ HTX của bạn" in profile
    assert "[1] ✏️ Cập nhật hồ sơ" in profile
    assert "[1]" in first_step and first_step != profile  # the first profile question
    assert province_chosen != first_step  # a choice was stored and the next step asked
    assert "Hãy chọn một số từ 1 đến" in out_of_range
    assert len(printed) == 5  # /thoat ended the chat: the last line was never read
    with Session(sqlite_engine) as session:
        (member,) = session.scalars(select(Member)).all()
    assert (member.channel, member.external_id) == (CHANNEL, "local")
    assert member.province is not None


def test_feedback_buttons_are_not_offered_and_end_of_input_ends_the_chat(core):  # noqa: F811
    printed = chat(core, ["htx can bao nhieu thanh vien"])
    answer = printed[1]
    assert "👍" not in answer and "👎" not in answer
    assert printed[-1] == ""  # end of input: a blank line, then the chat returns
