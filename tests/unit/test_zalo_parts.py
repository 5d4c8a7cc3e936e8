"""Zalo pieces without a server: rendering, numbered choices, event parsing, redelivery claims."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from bot.channels.zalo.channel import ChoiceMemory, MalformedEvent, parse_event, render
from bot.replies import Button, Reply

TEXT_UPDATE = {
    "event_name": "message.text.received",
    "message": {
        "message_id": "8f3c2a",
        "date": 1_764_000_000_000,
        "chat": {"id": "abc123", "chat_type": "PRIVATE"},
        "from": {"id": "abc123", "display_name": "Lan <&> 🌾", "is_bot": False},
        "text": "htx can bao nhieu thanh vien",
    },
}


def test_buttons_become_numbered_lines_with_a_hint():
    (text,) = render(
        Reply("Chọn một chủ đề:", (Button("Vốn góp", "cat:von:0"), Button("Thuế", "x")))
    )
    assert text == "Chọn một chủ đề:\n\n1. Vốn góp\n2. Thuế\n\nGõ số (1-2) để chọn."
    (plain,) = render(Reply("Xin chào <b>&</b>"))
    assert plain == "Xin chào <b>&</b>"  # Zalo shows plain text: nothing to escape


def test_long_replies_are_split_at_2000_characters_with_the_choices_last():
    text = "\n\n".join(f"Đoạn văn số {i}. " + "HTX " * 120 for i in range(10))
    parts = render(Reply(text, (Button("Tiếp", "more:x"),)))
    assert len(parts) > 2 and all(len(p) <= 2000 for p in parts)
    assert parts[-1].endswith("1. Tiếp\n\nGõ số 1 để chọn.")
    assert all(p.startswith("Đoạn văn số") for p in parts)


def test_a_typed_number_picks_the_choice_until_it_expires():
    memory = ChoiceMemory(ttl=dt.timedelta(minutes=30))
    buttons = (Button("👍 Hữu ích", "fb:up:1"), Button("Vốn góp", "faq:von"))
    memory.offer("chat", buttons)
    assert memory.pick("chat", " 2 ") == buttons[1]
    assert memory.pick("chat", "1.") == buttons[0]
    assert memory.pick("chat", "3") is None and memory.pick("chat", "0") is None
    assert memory.pick("chat", "2 thành viên") is None  # a question, not a choice
    assert memory.pick("other", "1") is None
    memory.offer("chat", ())
    assert memory.pick("chat", "1") is None
    expired = ChoiceMemory(ttl=dt.timedelta(seconds=-1))
    expired.offer("chat", buttons)
    assert expired.pick("chat", "1") is None


def test_parse_a_text_event_bare_or_wrapped_and_with_first_name():
    event = parse_event(TEXT_UPDATE)
    assert (event.name, event.message_id, event.chat_id, event.user_id) == (
        "message.text.received",
        "8f3c2a",
        "abc123",
        "abc123",
    )
    assert event.display_name == "Lan <&> 🌾" and event.text == "htx can bao nhieu thanh vien"
    assert event.key == "message.text.received:abc123:8f3c2a"
    assert event.sent_at.year == 2025
    wrapped = parse_event({"ok": True, "result": TEXT_UPDATE})
    assert wrapped == event
    message = {**TEXT_UPDATE["message"], "from": {"id": "abc123", "first_name": "Hoa"}}
    assert parse_event({**TEXT_UPDATE, "message": message}).display_name == "Hoa"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"event_name": None}, "event_name"),
        ({"event_name": 5}, "event_name"),
        ({"message": "x"}, "message"),
        ({"message": {**TEXT_UPDATE["message"], "message_id": None}}, "message_id"),
        ({"message": {**TEXT_UPDATE["message"], "message_id": True}}, "message_id"),
        ({"message": {**TEXT_UPDATE["message"], "chat": {}}}, "chat.id"),
        ({"message": {**TEXT_UPDATE["message"], "chat": {"id": ["x"]}}}, "chat.id"),
        ({"message": {**TEXT_UPDATE["message"], "from": {"id": {"a": 1}}}}, "from.id"),
        ({"message": {**TEXT_UPDATE["message"], "text": 42}}, "text"),
        ({"message": {k: v for k, v in TEXT_UPDATE["message"].items() if k != "text"}}, "text"),
    ],
)
def test_malformed_events_name_the_field(change, field):
    with pytest.raises(MalformedEvent, match=field.replace(".", r"\.")):
        parse_event({**TEXT_UPDATE, **change})


def test_events_that_are_not_objects_are_malformed():
    for update in (None, [], "x", 3, json.loads("[1, 2]")):
        with pytest.raises(MalformedEvent):
            parse_event(update)
