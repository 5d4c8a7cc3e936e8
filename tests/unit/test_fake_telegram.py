"""The fake Telegram Bot API server speaks the wire protocol the real client expects."""

from __future__ import annotations

import asyncio
import datetime as dt
import io
import json
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest
import telegram
from PIL import Image
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import Application, ContextTypes, MessageHandler, filters

from bot.answers import links
from tests.fakes import FakeTelegram, utf16_len
from tests.fakes.calls import assert_error, post, result

TOKEN = "123:ABC"
OTHER_TOKEN = "456:DEF"
MEMBER_ID = 700_001


@pytest.fixture(scope="module")
def server() -> Iterator[FakeTelegram]:
    with FakeTelegram(tokens=(TOKEN, OTHER_TOKEN)) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeTelegram) -> FakeTelegram:
    server.reset()
    return server


@pytest.fixture
def api(fake: FakeTelegram) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=f"{fake.base_url}/bot{TOKEN}/", timeout=10.0) as client:
        yield client


def keyboard(*buttons: dict[str, str]) -> dict[str, Any]:
    return {"inline_keyboard": [list(buttons)]}


# ----------------------------------------------------------------- basics


def test_get_me_describes_the_bot(api: httpx.Client) -> None:
    me = result(api, "getMe")
    assert me["id"] == 123
    assert me["is_bot"] is True
    assert me["username"] == "tro_ly_htx_bot"
    assert me["first_name"] == "Trợ lý HTX"
    assert me["can_join_groups"] is True


def test_method_names_are_case_insensitive_and_get_works(
    fake: FakeTelegram, api: httpx.Client
) -> None:
    response = api.get("GETME")
    assert response.status_code == 200
    assert fake.calls()[-1].method == "getMe"


def test_unknown_token_is_401_and_unknown_method_404(fake: FakeTelegram) -> None:
    with httpx.Client(base_url=fake.base_url, timeout=10.0) as client:
        body = assert_error(client.post("/bot999:XYZ/getMe"), 401, "Unauthorized")
        assert body == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        body = assert_error(client.post(f"/bot{TOKEN}/sendTelepathy"), 404, "Not Found")
        assert body == {"ok": False, "error_code": 404, "description": "Not Found"}
        assert_error(client.get("/nothing/here"), 404, "Not Found")
    assert [call.status for call in fake.calls()] == [401, 404]


def test_a_second_token_is_a_second_bot(fake: FakeTelegram) -> None:
    with httpx.Client(base_url=f"{fake.base_url}/bot{OTHER_TOKEN}/", timeout=10.0) as client:
        assert result(client, "getMe")["id"] == 456
    assert fake.calls(token=OTHER_TOKEN)[0].method == "getMe"
    assert fake.calls(token=TOKEN) == []


# -------------------------------------------------------- parameter forms


def test_form_and_query_parameters_are_normalized_like_json(
    fake: FakeTelegram, api: httpx.Client
) -> None:
    markup = keyboard({"text": "Có", "callback_data": "yes"})
    form = {
        "chat_id": str(MEMBER_ID),
        "text": "[1] Xin chào",
        "disable_notification": "true",
        "reply_markup": json.dumps(markup),
    }
    response = api.post("sendMessage", data=form)
    assert response.status_code == 200, response.text
    params = fake.calls("sendMessage")[0].params
    assert params["chat_id"] == MEMBER_ID
    assert params["text"] == "[1] Xin chào"
    assert params["disable_notification"] is True
    assert params["reply_markup"] == markup

    response = api.get("sendMessage", params={"chat_id": "-1001234", "text": "Chào nhóm"})
    message = response.json()["result"]
    assert message["chat"] == {"id": -1001234, "type": "supergroup", "title": "Nhóm 1001234"}


# ------------------------------------------------------- text validation


@pytest.mark.parametrize(
    ("html", "text", "entities"),
    [
        ("Xin chào bà con", "Xin chào bà con", []),
        (
            "<b>Chào <i>bà con</i></b> &amp; 🌾 <u>HTX</u>",
            "Chào bà con & 🌾 HTX",
            [
                {"type": "bold", "offset": 0, "length": 11},
                {"type": "italic", "offset": 5, "length": 6},
                {"type": "underline", "offset": 17, "length": 3},
            ],
        ),
        (
            '🌾<a href="https://htx.vn/?a=1&amp;b=2">HTX</a>',
            "🌾HTX",
            [{"type": "text_link", "offset": 2, "length": 3, "url": "https://htx.vn/?a=1&b=2"}],
        ),
        (
            '<pre><code class="language-python">x &lt; 1</code></pre>',
            "x < 1",
            [{"type": "pre", "offset": 0, "length": 5, "language": "python"}],
        ),
        (
            '<span class="tg-spoiler">bí mật</span> <s>cũ</s> &quot;mới&quot; &#127806;',
            'bí mật cũ "mới" 🌾',
            [
                {"type": "spoiler", "offset": 0, "length": 6},
                {"type": "strikethrough", "offset": 7, "length": 2},
            ],
        ),
        (
            "<blockquote expandable>Trích</blockquote>",
            "Trích",
            [{"type": "expandable_blockquote", "offset": 0, "length": 5}],
        ),
        ("\n  <b>Chào</b>  \n", "Chào", [{"type": "bold", "offset": 0, "length": 4}]),
    ],
)
def test_valid_html_gives_plain_text_and_entities(
    fake: FakeTelegram, api: httpx.Client, html: str, text: str, entities: list[Any]
) -> None:
    message = result(api, "sendMessage", chat_id=MEMBER_ID, text=html, parse_mode="HTML")
    assert message["text"] == text
    assert message.get("entities", []) == entities
    stored = fake.sent_messages(MEMBER_ID)[-1]
    assert stored["html"] == html
    assert stored["text"] == text


@pytest.mark.parametrize(
    ("html", "error"),
    [
        ("<script>alert(1)</script>", 'Unsupported start tag "script"'),
        ("Lúa & ngô", "Character '&'"),
        ("giá < 5 triệu", "Unsupported start tag"),
        ("<b>đậm</i>", "Unmatched end tag"),
        ("<b>đậm", "Can't find end tag"),
        ("đậm</b>", "Unexpected end tag"),
        ("<span>x</span>", 'Tag "span" must have class "tg-spoiler"'),
        ("<p>đoạn</p>", 'Unsupported start tag "p"'),
    ],
)
def test_invalid_html_is_refused_like_telegram(api: httpx.Client, html: str, error: str) -> None:
    response = post(api, "sendMessage", chat_id=MEMBER_ID, text=html, parse_mode="HTML")
    body = assert_error(response, 400, "Bad Request: can't parse entities: ")
    assert error in body["description"]


@pytest.mark.parametrize(
    ("text", "parse_mode", "ok"),
    [
        ("a" * 4096, None, True),
        ("a" * 4097, None, False),
        ("<b>" + "a" * 4096 + "</b>", "HTML", True),  # the limit applies after parsing
        ("&amp;" * 4096, "HTML", True),
        ("🌾" * 2048, None, True),  # 4,096 UTF-16 code units
        ("🌾" * 2049, None, False),  # 2,049 characters, but 4,098 code units
        ("ữ" * 4096, None, True),  # precomposed Vietnamese: one code unit each
    ],
)
def test_length_limit_counts_utf16_code_units(
    api: httpx.Client, text: str, parse_mode: str | None, ok: bool
) -> None:
    params: dict[str, Any] = {"chat_id": MEMBER_ID, "text": text}
    if parse_mode:
        params["parse_mode"] = parse_mode
    response = post(api, "sendMessage", **params)
    if ok:
        assert response.status_code == 200, response.text
    else:
        assert len(text) <= 4097
        assert_error(response, 400, "Bad Request: message is too long")


def test_utf16_len_counts_astral_characters_twice() -> None:
    assert utf16_len("Chào 🌾") == 7
    assert utf16_len("") == 0


@pytest.mark.parametrize(
    ("text", "parse_mode"), [("<b></b>", "HTML"), ("  \n ", None), ("", None), ("<i> </i>", "HTML")]
)
def test_empty_text_is_refused(api: httpx.Client, text: str, parse_mode: str | None) -> None:
    params: dict[str, Any] = {"chat_id": MEMBER_ID, "text": text}
    if parse_mode:
        params["parse_mode"] = parse_mode
    assert_error(post(api, "sendMessage", **params), 400, "Bad Request: message text is empty")


@pytest.mark.parametrize(
    ("button", "ok"),
    [
        ({"text": "Có", "callback_data": "x" * 64}, True),
        ({"text": "Có", "callback_data": "x" * 65}, False),
        ({"text": "Có", "callback_data": "ữ" * 22}, False),  # 22 characters, 66 bytes
        ({"text": "Có", "callback_data": ""}, False),
        ({"text": "Có", "callback_data": "yes", "url": "https://htx.vn"}, False),
        ({"text": "Web", "url": "https://htx.vn"}, True),
    ],
)
def test_callback_data_is_limited_to_64_bytes(
    api: httpx.Client, button: dict[str, str], ok: bool
) -> None:
    response = post(
        api, "sendMessage", chat_id=MEMBER_ID, text="Chọn", reply_markup=keyboard(button)
    )
    if ok:
        assert response.json()["result"]["reply_markup"] == keyboard(button)
    else:
        assert_error(response, 400, "Bad Request: BUTTON_DATA_INVALID")


def test_a_button_without_action_is_refused(api: httpx.Client) -> None:
    response = post(
        api, "sendMessage", chat_id=MEMBER_ID, text="Chọn", reply_markup=keyboard({"text": "Có"})
    )
    assert_error(response, 400, "can't parse inline keyboard button")


def test_reply_to_a_missing_message_is_refused(fake: FakeTelegram, api: httpx.Client) -> None:
    member = fake.user(MEMBER_ID)
    update = fake.send_user_message(TOKEN, member, "Hỏi giá")
    asked = update["message"]["message_id"]
    reply = result(
        api,
        "sendMessage",
        chat_id=MEMBER_ID,
        text="Giá 7.500đ",
        reply_parameters={"message_id": asked},
    )
    assert reply["reply_to_message"]["text"] == "Hỏi giá"
    assert reply["message_id"] == asked + 1
    response = post(api, "sendMessage", chat_id=MEMBER_ID, text="?", reply_to_message_id=999)
    assert_error(response, 400, "message to be replied not found")


# ------------------------------------------------------------------ updates


def test_get_updates_long_polls_and_offset_confirms(fake: FakeTelegram, api: httpx.Client) -> None:
    member = fake.user(first_name="Lê Thị C")
    timer = threading.Timer(0.3, fake.send_user_message, (TOKEN, member, "/start ref_01"))
    started = time.perf_counter()
    timer.start()
    try:
        updates = result(api, "getUpdates", timeout=5)
    finally:
        timer.join()
    assert 0.2 < time.perf_counter() - started < 4.0
    assert len(updates) == 1
    message = updates[0]["message"]
    assert message["text"] == "/start ref_01"
    assert message["from"] == member
    assert message["chat"]["id"] == member["id"]
    assert message["chat"]["type"] == "private"
    assert message["entities"] == [{"type": "bot_command", "offset": 0, "length": 6}]
    update_id = updates[0]["update_id"]
    assert fake.pushed_at(update_id) <= time.perf_counter()

    assert [u["update_id"] for u in result(api, "getUpdates")] == [update_id]
    assert result(api, "getUpdates", offset=update_id + 1) == []
    assert result(api, "getUpdates") == []

    started = time.perf_counter()
    assert result(api, "getUpdates", offset=update_id + 1, timeout=1) == []
    assert time.perf_counter() - started >= 0.9


def test_updates_pushed_from_many_threads_arrive_once_in_order(
    fake: FakeTelegram, api: httpx.Client
) -> None:
    members = [fake.user() for _ in range(4)]

    def chat(member: dict[str, Any]) -> None:
        for number in range(50):
            fake.send_user_message(TOKEN, member, f"tin {number}")

    threads = [threading.Thread(target=chat, args=(member,)) for member in members]
    for thread in threads:
        thread.start()
    received: list[dict[str, Any]] = []
    offset = 0
    deadline = time.monotonic() + 10
    while len(received) < 200 and time.monotonic() < deadline:
        batch = result(api, "getUpdates", offset=offset, timeout=1)
        received.extend(batch)
        if batch:
            offset = batch[-1]["update_id"] + 1
    for thread in threads:
        thread.join()
    ids = [update["update_id"] for update in received]
    assert len(ids) == 200
    assert ids == sorted(set(ids))
    for member in members:
        texts = [u["message"]["text"] for u in received if u["message"]["from"] == member]
        assert texts == [f"tin {number}" for number in range(50)]
        numbers = [u["message"]["message_id"] for u in received if u["message"]["from"] == member]
        assert numbers == list(range(1, 51))


def test_group_messages_and_photos(fake: FakeTelegram, api: httpx.Client) -> None:
    member = fake.user(username="nong_dan")
    text_update = fake.send_user_message(TOKEN, member, "Chào cả nhóm", chat_id=-100777)
    photo_update = fake.send_user_photo(TOKEN, member, chat_id=-100777)
    updates = result(api, "getUpdates")
    assert [u["update_id"] for u in updates] == [
        text_update["update_id"],
        photo_update["update_id"],
    ]
    chat = updates[0]["message"]["chat"]
    assert chat["type"] == "supergroup"
    assert chat["title"]
    photo_message = updates[1]["message"]
    assert "text" not in photo_message
    assert photo_message["photo"][-1]["width"] == 1280
    assert photo_message["message_id"] == 2


def test_get_updates_conflicts_with_a_webhook(fake: FakeTelegram, api: httpx.Client) -> None:
    assert result(api, "setWebhook", url="https://bot.example/telegram") is True
    response = post(api, "getUpdates")
    assert_error(response, 409, "Conflict: can't use getUpdates method while webhook is active")
    body = post(api, "deleteWebhook").json()
    assert body["description"] == "Webhook was deleted"
    assert result(api, "getUpdates") == []


@pytest.mark.parametrize("secret", ["có dấu", "a" * 257, "x/y"])
def test_set_webhook_checks_the_secret_token(api: httpx.Client, secret: str) -> None:
    response = post(api, "setWebhook", url="https://bot.example/tg", secret_token=secret)
    assert_error(response, 400, "Bad Request: ")


class Receiver:
    """A tiny webhook receiver on 127.0.0.1 that records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], dict[str, Any]]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), json.loads(body)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/telegram"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def test_webhook_delivery_with_secret_header(fake: FakeTelegram, api: httpx.Client) -> None:
    member = fake.user()
    stale = fake.send_user_message(TOKEN, member, "cũ")
    with Receiver() as receiver:
        assert (
            result(
                api,
                "setWebhook",
                url=receiver.url,
                secret_token="bi-mat_123",
                drop_pending_updates=True,
            )
            is True
        )
        assert fake.webhook(TOKEN) is not None
        first = fake.send_user_message(TOKEN, member, "Xin chào")
        second = fake.send_user_message(TOKEN, member, "Giá lúa?")
        deliveries = fake.wait_for_deliveries(2)
        receiver.status = 500
        third = fake.send_user_message(TOKEN, member, "Còn đó không?")
        deliveries = fake.wait_for_deliveries(3)

    assert [d.update_id for d in deliveries] == [
        first["update_id"],
        second["update_id"],
        third["update_id"],
    ]
    assert stale["update_id"] not in [d.update_id for d in deliveries]
    assert [d.status for d in deliveries] == [200, 200, 500]
    assert all(d.at >= fake.pushed_at(d.update_id) for d in deliveries)
    headers, body = receiver.requests[0]
    assert headers["X-Telegram-Bot-Api-Secret-Token"] == "bi-mat_123"
    assert headers["Content-Type"] == "application/json"
    assert body == first
    assert [request[1]["message"]["text"] for request in receiver.requests] == [
        "Xin chào",
        "Giá lúa?",
        "Còn đó không?",
    ]


# ------------------------------------------------------------ edits, buttons


def test_edit_message_text(fake: FakeTelegram, api: httpx.Client) -> None:
    markup = keyboard({"text": "Có", "callback_data": "yes"})
    sent = result(
        api,
        "sendMessage",
        chat_id=MEMBER_ID,
        text="<b>Hỏi</b>",
        parse_mode="HTML",
        reply_markup=markup,
    )
    target = {"chat_id": MEMBER_ID, "message_id": sent["message_id"]}

    response = post(api, "editMessageText", chat_id=MEMBER_ID, message_id=999, text="x")
    assert_error(response, 400, "Bad Request: message to edit not found")
    response = post(
        api, "editMessageText", **target, text="<b>Hỏi</b>", parse_mode="HTML", reply_markup=markup
    )
    assert_error(response, 400, "Bad Request: message is not modified: specified new message")

    edited = result(api, "editMessageText", **target, text="<i>Đã trả lời</i>", parse_mode="HTML")
    assert edited["text"] == "Đã trả lời"
    assert "reply_markup" not in edited  # an edit without reply_markup drops the keyboard
    assert edited["edit_date"] >= sent["date"]
    stored = fake.sent_messages(MEMBER_ID)
    assert len(stored) == 1
    assert stored[0]["html"] == "<i>Đã trả lời</i>"
    assert stored[0]["entities"] == [{"type": "italic", "offset": 0, "length": 10}]


def test_a_user_message_cannot_be_edited(fake: FakeTelegram, api: httpx.Client) -> None:
    member = fake.user(MEMBER_ID)
    update = fake.send_user_message(TOKEN, member, "Của tôi")
    response = post(
        api,
        "editMessageText",
        chat_id=MEMBER_ID,
        message_id=update["message"]["message_id"],
        text="Sửa",
    )
    assert_error(response, 400, "Bad Request: message can't be edited")


def test_answer_callback_query(fake: FakeTelegram, api: httpx.Client) -> None:
    member = fake.user(MEMBER_ID)
    sent = result(
        api,
        "sendMessage",
        chat_id=MEMBER_ID,
        text="Bạn có tham gia?",
        reply_markup=keyboard({"text": "Có", "callback_data": "join:yes"}),
    )
    update = fake.press_button(TOKEN, member, sent, "join:yes")
    query = update["callback_query"]
    assert query["data"] == "join:yes"
    assert query["from"] == member
    assert query["message"]["message_id"] == sent["message_id"]
    assert query["message"]["reply_markup"] == sent["reply_markup"]
    assert result(api, "getUpdates")[0]["callback_query"]["id"] == query["id"]

    assert result(api, "answerCallbackQuery", callback_query_id=query["id"], text="Đã ghi nhận")
    response = post(api, "answerCallbackQuery", callback_query_id="4242")
    assert_error(response, 400, "query is too old and response timeout expired")
    second = fake.press_button(TOKEN, member, (MEMBER_ID, sent["message_id"]), "join:yes")
    response = post(
        api, "answerCallbackQuery", callback_query_id=second["callback_query"]["id"], text="x" * 201
    )
    assert_error(response, 400, "Bad Request: ")


def test_copy_message(fake: FakeTelegram, api: httpx.Client) -> None:
    member = fake.user(MEMBER_ID, first_name="Phạm Văn D")
    question = fake.send_user_message(TOKEN, member, "Phân bón nào tốt?")["message"]
    group = -100555
    copied = result(
        api, "copyMessage", chat_id=group, from_chat_id=MEMBER_ID, message_id=question["message_id"]
    )
    assert copied == {"message_id": 1}
    [copy] = fake.wait_for_message(group, "Phân bón")
    assert copy["message_id"] == 1
    assert copy["from"]["is_bot"] is True
    assert "forward_origin" not in copy

    response = post(api, "copyMessage", chat_id=group, from_chat_id=MEMBER_ID, message_id=99)
    assert_error(response, 400, "Bad Request: message to copy not found")


def test_set_my_commands_checks_the_commands(api: httpx.Client) -> None:
    commands = [{"command": "start", "description": "Bắt đầu"}]
    assert result(api, "setMyCommands", commands=commands) is True
    assert_error(
        post(api, "setMyCommands", commands=[{"command": "Bắt", "description": "x"}]),
        400,
        "BOT_COMMAND_INVALID",
    )


# ------------------------------------------------------ failures and waiting


def test_fail_next_answers_429_with_retry_after(fake: FakeTelegram, api: httpx.Client) -> None:
    fake.fail_next("sendmessage", 429, "Too Many Requests: retry after 7", retry_after=7, times=2)
    for _ in range(2):
        body = assert_error(post(api, "sendMessage", chat_id=MEMBER_ID, text="a"), 429, "retry")
        assert body["parameters"] == {"retry_after": 7}
    assert result(api, "sendMessage", chat_id=MEMBER_ID, text="a")["text"] == "a"
    assert [call.status for call in fake.calls("sendMessage")] == [429, 429, 200]


def test_blocked_users_get_403(fake: FakeTelegram, api: httpx.Client) -> None:
    fake.block(MEMBER_ID)
    response = post(api, "sendMessage", chat_id=MEMBER_ID, text="Chào")
    assert_error(response, 403, "Forbidden: bot was blocked by the user")
    assert result(api, "sendMessage", chat_id=MEMBER_ID + 2, text="Chào")["chat"]["id"]
    assert fake.sent_messages() == fake.sent_messages(MEMBER_ID + 2)


def test_wait_for_times_out_with_a_summary(fake: FakeTelegram, api: httpx.Client) -> None:
    result(api, "sendMessage", chat_id=MEMBER_ID, text="Một")
    with pytest.raises(AssertionError, match=r"(?s)0 of 1 expected calls.*sendMessage -> 200"):
        fake.wait_for(lambda call: call.method == "sendPhoto", timeout=0.2)
    with pytest.raises(AssertionError):
        fake.wait_for_message(MEMBER_ID, "Hai", timeout=0.2)


def test_wait_for_message_wakes_on_calls_from_another_thread(
    fake: FakeTelegram, api: httpx.Client
) -> None:
    def later() -> None:
        time.sleep(0.2)
        for number in range(3):
            post(api, "sendMessage", chat_id=MEMBER_ID, text=f"Trả lời {number}")

    thread = threading.Thread(target=later)
    thread.start()
    try:
        messages = fake.wait_for_message(MEMBER_ID, "Trả lời", timeout=5, count=3)
    finally:
        thread.join()
    assert [m["text"] for m in messages] == ["Trả lời 0", "Trả lời 1", "Trả lời 2"]
    assert [m["message_id"] for m in messages] == [1, 2, 3]


def test_many_messages_are_fast(fake: FakeTelegram, api: httpx.Client) -> None:
    started = time.perf_counter()
    for number in range(500):
        post(
            api,
            "sendMessage",
            chat_id=MEMBER_ID + number % 7,
            text=f"<b>{number}</b>",
            parse_mode="HTML",
        )
    elapsed = time.perf_counter() - started
    assert len(fake.wait_for(lambda call: call.ok, count=500, timeout=1)) == 500
    assert len(fake.sent_messages()) == 500
    assert elapsed < 10  # about 1 ms each here; generous for a loaded machine


# -------------------------------------------------- python-telegram-bot 22


def test_python_telegram_bot_talks_to_the_fake(
    fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without it PTB 22 warns (an error here) on every RetryAfter it builds.
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    member = fake.user(first_name="Trần Thị B", username="tran_b")
    markup = InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Có", callback_data="join:yes"),
                InlineKeyboardButton("Trang HTX", url="https://htx.vn"),
            ]
        ]
    )

    async def scenario() -> None:
        async with telegram.Bot(TOKEN, base_url=f"{fake.base_url}/bot") as bot:
            me = await bot.get_me()
            assert me.username == "tro_ly_htx_bot"
            assert me.first_name == "Trợ lý HTX"

            sent = await bot.send_message(
                member["id"], "<b>Chào</b> &amp; 🌾", parse_mode="HTML", reply_markup=markup
            )
            assert sent.text == "Chào & 🌾"
            assert sent.entities[0].type == "bold"
            assert (sent.entities[0].offset, sent.entities[0].length) == (0, 4)
            assert sent.reply_markup == markup
            assert sent.from_user is not None and sent.from_user.is_bot

            pushed = fake.send_user_message(TOKEN, member, "Giá phân bón hôm nay?")
            updates = await bot.get_updates(timeout=5)
            assert [u.update_id for u in updates] == [pushed["update_id"]]
            assert updates[0].message is not None
            assert updates[0].message.text == "Giá phân bón hôm nay?"
            assert updates[0].effective_user is not None
            assert updates[0].effective_user.full_name == "Trần Thị B"

            fake.press_button(TOKEN, member, (member["id"], sent.message_id), "join:yes")
            updates = await bot.get_updates(offset=updates[-1].update_id + 1, timeout=5)
            query = updates[0].callback_query
            assert query is not None and query.data == "join:yes"
            assert await query.answer("Đã ghi nhận")

            edited = await bot.edit_message_text(
                "<i>Đã tham gia</i>", member["id"], sent.message_id, parse_mode="HTML"
            )
            assert isinstance(edited, telegram.Message)
            assert edited.text == "Đã tham gia"

            with pytest.raises(telegram.error.BadRequest, match="Can't parse entities"):
                await bot.send_message(member["id"], "a < b", parse_mode="HTML")
            fake.fail_next("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3)
            with pytest.raises(telegram.error.RetryAfter) as retry:
                await bot.send_message(member["id"], "Lại")
            assert retry.value.retry_after == dt.timedelta(seconds=3)
            fake.block(member["id"])
            with pytest.raises(telegram.error.Forbidden, match="blocked"):
                await bot.send_message(member["id"], "Chào")

    asyncio.run(scenario())

    call = fake.calls("sendMessage")[0]
    assert call.params["chat_id"] == member["id"]
    assert call.params["parse_mode"] == "HTML"
    assert call.params["reply_markup"] == {
        "inline_keyboard": [
            [
                {"text": "Có", "callback_data": "join:yes"},
                {"text": "Trang HTX", "url": "https://htx.vn"},
            ]
        ]
    }
    assert call.message is not None and call.message["html"] == "<b>Chào</b> &amp; 🌾"
    assert [c.method for c in fake.calls()][:4] == [
        "getMe",
        "getMe",
        "sendMessage",
        "getUpdates",
    ]


def test_a_polling_application_answers_through_the_fake(fake: FakeTelegram) -> None:
    async def echo(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        assert update.message is not None
        await update.message.reply_html(f"<b>Bạn hỏi:</b> {update.message.text}")

    async def scenario() -> list[dict[str, Any]]:
        application = Application.builder().token(TOKEN).base_url(f"{fake.base_url}/bot").build()
        application.add_handler(MessageHandler(filters.TEXT, echo))
        async with application:
            assert application.updater is not None
            await application.updater.start_polling(poll_interval=0, timeout=10)
            await application.start()
            member = fake.user(MEMBER_ID)
            for number in range(20):
                fake.send_user_message(TOKEN, member, f"câu {number}")
            answers = await asyncio.to_thread(fake.wait_for_message, MEMBER_ID, count=20)
            await application.updater.stop()
            await application.stop()
        return answers

    answers = asyncio.run(scenario())
    assert answers[-1]["text"] == "Bạn hỏi: câu 19"
    assert answers[-1]["entities"] == [{"type": "bold", "offset": 0, "length": 8}]
    assert [call.method for call in fake.calls()][:3] == ["getMe", "deleteWebhook", "getUpdates"]


def test_stop_ends_a_pending_long_poll_quickly() -> None:
    answers: list[httpx.Response] = []
    with FakeTelegram() as fake:

        def poll() -> None:
            with httpx.Client(timeout=30.0) as client:
                url = f"{fake.base_url}/bot{TOKEN}/getUpdates"
                answers.append(client.post(url, json={"timeout": 30}))

        thread = threading.Thread(target=poll)
        thread.start()
        time.sleep(0.5)  # the poll is waiting on the server by now
        started = time.perf_counter()
    assert time.perf_counter() - started < 2.0
    thread.join(5)
    assert answers[0].json() == {"ok": True, "result": []}


# ------------------------------------------------------------------- photos


QR_URL = "http://127.0.0.1:8080/faq/von_gop/qr.png?t=ab12"


def qr_png() -> bytes:
    return links.qr_png(QR_URL).png


def test_send_photo_uploads_a_png_with_an_html_caption_and_buttons(
    fake: FakeTelegram, api: httpx.Client
) -> None:
    png = qr_png()
    markup = keyboard({"text": "Mở trang", "callback_data": "faq:von_gop"})
    form = {
        "chat_id": str(MEMBER_ID),
        "caption": "[1] <b>Mã QR</b> &amp; 🌾",
        "parse_mode": "HTML",
        "reply_markup": json.dumps(markup),
    }
    response = api.post("sendPhoto", data=form, files={"photo": ("qr.png", png, "image/png")})
    assert response.status_code == 200, response.text
    message = response.json()["result"]
    assert message["caption"] == "[1] Mã QR & 🌾"
    assert message["caption_entities"] == [{"type": "bold", "offset": 4, "length": 5}]
    assert message["reply_markup"] == markup
    assert "text" not in message and message["from"]["is_bot"] is True
    sizes = message["photo"]
    with Image.open(io.BytesIO(png)) as image:
        side = image.width
    # Telegram's boxes (90, 320, 800, 1280 pixels) below the image's size, then its size.
    assert [(s["width"], s["height"]) for s in sizes] == [(90, 90), (320, 320), (side, side)]
    assert side == 328
    assert len({s["file_id"] for s in sizes}) == len(sizes) >= 2
    assert fake.file_bytes(sizes[-1]["file_id"]) == png
    (call,) = fake.calls("sendPhoto")
    assert call.params["chat_id"] == MEMBER_ID and call.params["reply_markup"] == markup
    assert call.params["caption"] == form["caption"]  # free text: never JSON-decoded
    assert call.params["photo"].data == png and call.params["photo"].filename == "qr.png"
    assert call.message is not None and call.message["html"] == form["caption"]
    [stored] = fake.sent_photos(MEMBER_ID)
    assert stored["photo"] == sizes
    assert fake.wait_for_message(MEMBER_ID, "Mã QR")[0]["message_id"] == message["message_id"]

    # A photo the fake holds can be sent again by its file_id (a form or JSON body).
    again = result(api, "sendPhoto", chat_id=MEMBER_ID, photo=sizes[0]["file_id"])
    assert again["photo"] == sizes and "caption" not in again
    with pytest.raises(KeyError):
        fake.file_bytes("AgACAgUAAxkDAAI999y")


def upload(api: httpx.Client, data: bytes, **form: str) -> httpx.Response:
    return api.post(
        "sendPhoto",
        data={"chat_id": str(MEMBER_ID), **form},
        files={"photo": ("qr.png", data, "image/png")},
    )


def png_of(width: int, height: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("L", (width, height), 255).save(buffer, format="PNG")
    return buffer.getvalue()


def test_send_photo_is_checked_like_telegram(fake: FakeTelegram, api: httpx.Client) -> None:
    png = qr_png()
    assert_error(post(api, "sendPhoto", chat_id=MEMBER_ID), 400, "Bad Request: there is no photo")
    assert_error(upload(api, b"not an image"), 400, "Bad Request: IMAGE_PROCESS_FAILED")
    assert_error(upload(api, png_of(10, 400)), 400, "Bad Request: PHOTO_INVALID_DIMENSIONS")
    assert_error(upload(api, png_of(6000, 4500)), 400, "PHOTO_INVALID_DIMENSIONS")
    assert_error(
        post(api, "sendPhoto", chat_id=MEMBER_ID, photo="https://example.org/qr.png"),
        400,
        "Bad Request: failed to get HTTP URL content",  # the fake never fetches
    )
    assert_error(
        post(api, "sendPhoto", chat_id=MEMBER_ID, photo="AgACAgUAAxkDAAI42y"),
        400,
        "Bad Request: wrong file identifier/HTTP URL specified",
    )
    # The caption: at most 1024 UTF-16 units after parsing, valid HTML.
    too_long = upload(api, png, caption="a" * 1025)
    assert_error(too_long, 400, "Bad Request: message caption is too long")
    assert_error(upload(api, png, caption="😀" * 513), 400, "caption is too long")
    tags = upload(api, png, caption="<b>" + "a" * 1024 + "</b>", parse_mode="HTML")
    assert tags.status_code == 200, tags.text  # tags do not count
    bad = upload(api, png, caption="a < b & c", parse_mode="HTML")
    assert_error(bad, 400, "Bad Request: can't parse entities")
    wide = upload(api, png_of(2000, 1000)).json()["result"]["photo"]
    assert [(s["width"], s["height"]) for s in wide] == [
        (90, 45),
        (320, 160),
        (800, 400),
        (1280, 640),
    ]
    blank = upload(api, png, caption="  ")
    assert blank.status_code == 200 and "caption" not in blank.json()["result"]
    assert_error(upload(api, png, reply_markup='{"keyboard": []}'), 400, "reply keyboard")
    fake.block(MEMBER_ID)
    assert_error(upload(api, png), 403, "Forbidden: bot was blocked by the user")
    assert len(fake.sent_photos()) == 3


def test_malformed_multipart_bodies_are_refused(api: httpx.Client) -> None:
    no_boundary = api.post(
        "sendPhoto", content=b"--x\r\n\r\n", headers={"Content-Type": "multipart/form-data"}
    )
    assert_error(no_boundary, 400, "multipart body without a boundary")
    unterminated = api.post(
        "sendPhoto",
        content=b'--x\r\nContent-Disposition: form-data; name="chat_id"\r\n\r\n1\r\n',
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert_error(unterminated, 400, "malformed multipart body")
    nameless = api.post(
        "sendPhoto",
        content=b"--x\r\nContent-Disposition: form-data\r\n\r\n1\r\n--x--\r\n",
        headers={"Content-Type": "multipart/form-data; boundary=x"},
    )
    assert_error(nameless, 400, "without a name")


def test_python_telegram_bot_uploads_a_photo_to_the_fake(
    fake: FakeTelegram, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PTB_TIMEDELTA", "1")
    member = fake.user(first_name="Lê Văn C")
    png = qr_png()
    markup = InlineKeyboardMarkup([[InlineKeyboardButton("Mở", callback_data="faq:von_gop")]])

    async def scenario() -> telegram.Message:
        async with telegram.Bot(TOKEN, base_url=f"{fake.base_url}/bot") as bot:
            with pytest.raises(telegram.error.BadRequest, match="caption is too long"):
                await bot.send_photo(member["id"], png, caption="x" * 1025)
            return await bot.send_photo(
                member["id"],
                png,
                caption="<b>Mã QR</b> &amp; 🌾",
                parse_mode="HTML",
                reply_markup=markup,
                filename="qr.png",
            )

    sent = asyncio.run(scenario())
    assert sent.caption == "Mã QR & 🌾" and sent.caption_entities[0].type == "bold"
    assert sent.reply_markup == markup
    assert [(p.width, p.height) for p in sent.photo] == [(90, 90), (320, 320), (328, 328)]
    assert fake.file_bytes(sent.photo[-1].file_id) == png
    call = fake.calls("sendPhoto")[-1]
    assert call.params["photo"].filename == "qr.png"
    assert call.params["photo"].content_type == "image/png"
