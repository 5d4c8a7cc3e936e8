"""Questions typed as free text, and the 👍/👎 feedback under answers (``fb:up|down:<id>``).

A question is answered by the answer service and logged; answers from the
knowledge base or the law ask for feedback. A 👎 on an answered question puts
it in the review queue, a 👍 takes it back out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Final

from bot.answers import Answer, AnswerKind
from bot.handlers.base import ButtonPrefix, Handler, Services, stale
from bot.replies import Button, Reply
from bot.store.members import MemberInfo

__all__ = ["HANDLER", "feedback_buttons"]

log = logging.getLogger(__name__)

MAX_QUESTION_CHARS: Final = 2000  # longer texts are answered from their beginning


async def answer_question(services: Services, member: MemberInfo, text: str) -> list[Reply]:
    """Answer a question and log it."""
    answer = await services.answers.answer(
        text[:MAX_QUESTION_CHARS], channel=member.channel, member_id=member.id
    )
    message_id = await asyncio.to_thread(
        services.messages.record,
        member_id=member.id,
        channel=member.channel,
        text=text,
        kind=answer.kind.value,
        intent=answer.intent,
        confidence=answer.confidence,
        entry_id=answer.entry.id if answer.entry else None,
        fallback=answer.fallback,
        latency_ms=answer.latency_ms,
    )
    return _answer_replies(answer, message_id)


async def feedback(services: Services, member: MemberInfo, rest: str) -> Reply:
    """Store a 👍 or 👎 (``fb:up|down:<message id>``)."""
    value, _, id_text = rest.partition(":")
    if value not in ("up", "down") or not id_text.isdigit():
        return stale()
    stored = await asyncio.to_thread(services.messages.set_feedback, int(id_text), member.id, value)
    if not stored:
        return stale()
    await _feedback_review(services, member, int(id_text), value)
    if value == "up":
        return Reply("Cảm ơn bạn đã góp ý! 👍", notice=True)
    return Reply(
        "Cảm ơn bạn! Câu trả lời này sẽ được cán bộ xem lại. Gõ /lienhe để hỏi cán bộ trực tiếp.",
        notice=True,
    )


def feedback_buttons(message_id: int) -> tuple[Button, ...]:
    """Return the 👍/👎 buttons of one logged message."""
    return (
        Button("👍 Hữu ích", f"fb:up:{message_id}"),
        Button("👎 Chưa đúng", f"fb:down:{message_id}"),
    )


async def _feedback_review(
    services: Services, member: MemberInfo, message_id: int, value: str
) -> None:
    """A 👎 on an answered question puts it in the review queue; a 👍 takes it back out."""
    review_log = services.answers.review_log
    if review_log is None:
        return
    try:
        if value == "up":
            await asyncio.to_thread(review_log.withdraw_feedback, message_id)
            return
        message = await asyncio.to_thread(services.messages.get, message_id)
        if message is None or message.kind == "browse" or message.fallback:
            # An entry opened from the menu: its text is at fault, not the NLU; a
            # fallback answer is in the queue already.
            return
        await asyncio.to_thread(review_log.withdraw_feedback, message_id)
        await asyncio.to_thread(
            review_log.record,
            channel=member.channel,
            text=message.text,
            reason="thumbs_down",
            intent=message.intent,
            confidence=message.confidence,
            member_id=member.id,
            message_id=message_id,
            candidates=[(message.intent, message.confidence or 0.0)] if message.intent else (),
        )
    except Exception:  # the member's feedback is stored; the queue can miss one
        log.exception("could not queue a 👎 for review")


def _answer_replies(answer: Answer, message_id: int) -> list[Reply]:
    """One reply per question answered; answers from the knowledge base or the law ask for 👍/👎."""
    replies = []
    for part, reply in zip(answer.answered, answer.to_replies(), strict=True):
        if part.kind in (AnswerKind.ENTRY, AnswerKind.SUGGESTED, AnswerKind.CLAUSE):
            reply = Reply(
                reply.text, (*feedback_buttons(message_id), *reply.buttons), reply.citations
            )
        replies.append(reply)
    return replies


HANDLER: Final = Handler(
    buttons=(ButtonPrefix("fb", feedback),),
    help=("• Gõ câu hỏi bằng tiếng Việt (có dấu hoặc không dấu).",),
    on_text=answer_question,
)
