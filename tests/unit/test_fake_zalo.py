"""The fake Zalo Bot Platform server speaks the wire protocol described in CHANNELS.md."""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import pytest

from tests.fakes import FakeZalo, ZaloCall
from tests.fakes.calls import assert_error, post, result

TOKEN = "1234567890:zalo-secret-ABC"
OTHER_TOKEN = "2222222222:zalo-secret-XYZ"
CHAT = "a1b2c3d4e5f60718"
SECRET = "bi-mat_12345"
HEX32 = re.compile(r"[0-9a-f]{32}")


@pytest.fixture(scope="module")
def server() -> Iterator[FakeZalo]:
    with FakeZalo(tokens=(TOKEN, OTHER_TOKEN)) as fake:
        yield fake


@pytest.fixture
def fake(server: FakeZalo) -> FakeZalo:
    server.reset()
    return server


def client_for(fake: FakeZalo, token: str = TOKEN) -> httpx.Client:
    return httpx.Client(base_url=f"{fake.base_url}/bot{token}/", timeout=10.0)


@pytest.fixture
def api(fake: FakeZalo) -> Iterator[httpx.Client]:
    with client_for(fake) as client:
        yield client


class Receiver:
    """A tiny keep-alive webhook receiver on 127.0.0.1 that records what it was sent."""

    def __init__(self) -> None:
        self.requests: list[tuple[dict[str, str], Any]] = []
        self.status = 200
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append((dict(self.headers.items()), json.loads(body)))
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/zalo"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Receiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


# ----------------------------------------------------------------- basics


def test_get_me_describes_the_bot(api: httpx.Client) -> None:
    me = result(api, "getMe")
    assert me == {
        "id": "1234567890",
        "account_name": "tro_ly_htx",
        "account_type": "BASIC",
        "can_join_groups": False,
    }
    assert api.get("getme").json()["result"]["id"] == "1234567890"


def test_unknown_token_is_401_and_unknown_method_404(fake: FakeZalo) -> None:
    with httpx.Client(base_url=fake.base_url, timeout=10.0) as client:
        response = client.post("/bot999:nope/getMe", json={})
        assert response.status_code == 401
        assert response.json() == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        response = client.post(f"/bot{TOKEN}/sendSticker", json={})
        assert response.status_code == 404
        assert response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}
        assert_error(client.get("/elsewhere"), 404, "Not Found")
    assert [call.status for call in fake.calls()] == [401, 404]


def test_send_message_with_json_form_and_query(fake: FakeZalo, api: httpx.Client) -> None:
    sent = result(api, "sendMessage", chat_id=CHAT, text="Chào bà con 🌾")
    assert HEX32.fullmatch(sent["message_id"])
    assert isinstance(sent["date"], int) and abs(sent["date"] - time.time() * 1000) < 60_000
    response = api.post("sendMessage", data={"chat_id": CHAT, "text": "Giá lúa hôm nay"})
    assert response.status_code == 200, response.text
    response = api.get("sendMessage", params={"chat_id": CHAT, "text": "Qua query"})
    assert response.status_code == 200, response.text
    messages = fake.wait_for_message(CHAT, count=3, timeout=2)
    assert [m["text"] for m in messages] == ["Chào bà con 🌾", "Giá lúa hôm nay", "Qua query"]
    assert messages[0] == {"chat_id": CHAT, "text": "Chào bà con 🌾", **sent}
    assert fake.sent_messages(CHAT) == messages
    assert fake.sent_messages("other") == []
    assert fake.calls("sendMessage")[1].params == {"chat_id": CHAT, "text": "Giá lúa hôm nay"}


def test_text_length_is_1_to_2000_characters(fake: FakeZalo, api: httpx.Client) -> None:
    for text in ("", "a" * 2001, "ạ" * 2001):
        response = post(api, "sendMessage", chat_id=CHAT, text=text)
        assert_error(response, 400, "Bad Request: text must be between 1 and 2000 characters")
    assert_error(post(api, "sendMessage", chat_id=CHAT), 400, "text must be between")
    assert_error(api.post("sendMessage", data={"chat_id": CHAT, "text": ""}), 400, "text")
    assert result(api, "sendMessage", chat_id=CHAT, text="ư" * 2000)["message_id"]
    assert result(api, "sendMessage", chat_id=CHAT, text="😀" * 2000)["message_id"]
    for chat_id in ("", 12345, None):
        response = post(api, "sendMessage", chat_id=chat_id, text="Chào")
        assert_error(response, 400, "chat_id")
    assert [len(m["text"]) for m in fake.sent_messages()] == [2000, 2000]


# --------------------------------------------------------------- updates


def test_get_updates_returns_one_update_object(fake: FakeZalo, api: httpx.Client) -> None:
    member = fake.user()
    assert re.fullmatch(r"[0-9a-f]{16}", member["id"])
    assert member == {"id": member["id"], "display_name": "Nguyễn Văn A", "is_bot": False}
    first = fake.send_user_message(TOKEN, member, "Xin chào")
    second = fake.send_user_message(TOKEN, member, "Giá phân bón?")
    assert first["event_name"] == "message.text.received"
    message = first["message"]
    assert HEX32.fullmatch(message["message_id"])
    assert message["chat"] == {"id": member["id"], "chat_type": "PRIVATE"}
    assert message["from"] == member
    assert message["text"] == "Xin chào"
    assert fake.pushed_at(message["message_id"]) <= time.perf_counter()

    assert result(api, "getUpdates", timeout="30") == first
    assert result(api, "getUpdates", timeout=30) == second
    assert api.post("getUpdates", data={"timeout": "0"}).status_code == 408


def test_get_updates_long_polls_until_a_push(fake: FakeZalo, api: httpx.Client) -> None:
    member = fake.user(display_name="Trần Thị B")

    def later() -> None:
        fake.wait_for_request("getUpdates")
        time.sleep(0.1)
        fake.send_user_message(TOKEN, member, "Có ai không?")

    thread = threading.Thread(target=later)
    thread.start()
    try:
        started = time.perf_counter()
        update = result(api, "getUpdates", timeout="30")
        elapsed = time.perf_counter() - started
    finally:
        thread.join()
    assert update["message"]["text"] == "Có ai không?"
    assert elapsed < 2


def test_an_abandoned_long_poll_takes_no_update(fake: FakeZalo, api: httpx.Client) -> None:
    member = fake.user()
    with client_for(fake) as quitter, pytest.raises(httpx.ReadTimeout):
        quitter.post("getUpdates", json={"timeout": "30"}, timeout=0.3)
    fake.send_user_message(TOKEN, member, "còn ai không?")
    time.sleep(0.5)  # the abandoned poll would have taken it by now
    update = result(api, "getUpdates", timeout="5")
    assert update["message"]["text"] == "còn ai không?"


def test_get_updates_timeout_is_408(fake: FakeZalo, api: httpx.Client) -> None:
    started = time.perf_counter()
    response = post(api, "getUpdates", timeout="1")
    elapsed = time.perf_counter() - started
    assert response.status_code == 408
    assert response.json() == {"ok": False, "error_code": 408, "description": "Request timeout"}
    assert 0.9 <= elapsed < 2
    assert_error(post(api, "getUpdates", timeout="soon"), 400, "timeout")


def test_other_events_and_malformed_updates(fake: FakeZalo, api: httpx.Client) -> None:
    member = fake.user()
    image = fake.send_user_event(
        TOKEN, member, "message.image.received", photo_url="https://x.example/a.jpg"
    )
    sticker = fake.send_user_event(TOKEN, member, "message.sticker.received", sticker="abc")
    other = fake.send_user_event(TOKEN, member, "message.unsupported.received")
    broken = fake.push_update(TOKEN, {"event_name": "message.text.received", "message": None})
    assert result(api, "getUpdates", timeout="1") == image
    assert image["message"]["photo_url"] == "https://x.example/a.jpg"
    assert result(api, "getUpdates", timeout="1") == sticker
    assert sticker["message"]["sticker"] == "abc"
    assert result(api, "getUpdates", timeout="1") == other
    assert result(api, "getUpdates", timeout="1") == broken
    with client_for(fake, OTHER_TOKEN) as other_api:
        assert post(other_api, "getUpdates", timeout="0").status_code == 408


def test_polling_gets_nothing_while_a_webhook_is_set(fake: FakeZalo, api: httpx.Client) -> None:
    member = fake.user()
    queued = fake.send_user_message(TOKEN, member, "Trước webhook")
    assert result(api, "getUpdates", timeout="1") == queued  # no webhook: stays queued
    with Receiver() as receiver:
        set_result = result(api, "setWebhook", url=receiver.url, secret_token=SECRET)
        assert set_result["url"] == receiver.url
        pushed = fake.send_user_message(TOKEN, member, "Qua webhook")
        started = time.perf_counter()
        assert_error(post(api, "getUpdates", timeout="1"), 408, "Request timeout")
        assert time.perf_counter() - started >= 0.9
        fake.wait_for_deliveries(1)
        assert receiver.requests[0][1] == pushed
        assert result(api, "deleteWebhook") is True
    assert fake.webhook(TOKEN) is None
    later = fake.send_user_message(TOKEN, member, "Sau webhook")
    assert result(api, "getUpdates", timeout="1") == later


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"url": "https://bot.example/zalo", "secret_token": "1234567"}, "secret_token"),
        ({"url": "https://bot.example/zalo", "secret_token": "a" * 257}, "secret_token"),
        ({"url": "https://bot.example/zalo"}, "secret_token"),
        ({"url": "ftp://bot.example/zalo", "secret_token": SECRET}, "url"),
        ({"secret_token": SECRET}, "url"),
    ],
)
def test_set_webhook_checks_url_and_secret(
    fake: FakeZalo, api: httpx.Client, params: dict[str, str], error: str
) -> None:
    assert_error(post(api, "setWebhook", **params), 400, error)
    assert fake.webhook(TOKEN) is None


def test_set_webhook_accepts_8_to_256_character_secrets(fake: FakeZalo, api: httpx.Client) -> None:
    for secret in ("12345678", "b" * 256):
        result(api, "setWebhook", url="https://bot.example/zalo", secret_token=secret)
        hook = fake.webhook(TOKEN)
        assert hook is not None and hook["secret_token"] == secret


def test_webhook_delivery_in_order_with_secret_and_redelivery(
    fake: FakeZalo, api: httpx.Client
) -> None:
    member = fake.user()
    with Receiver() as receiver:
        result(api, "setWebhook", url=receiver.url, secret_token=SECRET)
        first = fake.send_user_message(TOKEN, member, "Xin chào")
        second = fake.send_user_message(TOKEN, member, "Giá lúa?")
        fake.redeliver(TOKEN, second)
        deliveries = fake.wait_for_deliveries(3)
        receiver.status = 500
        third = fake.send_user_message(TOKEN, member, "Còn đó không?")
        deliveries = fake.wait_for_deliveries(4)

    keys = [
        f"message.text.received:{update['message']['message_id']}"
        for update in (first, second, second, third)
    ]
    assert [d.event_key for d in deliveries] == keys
    assert [d.status for d in deliveries] == [200, 200, 200, 500]
    assert all(d.error is None and d.token == TOKEN and d.url == receiver.url for d in deliveries)
    first_id = first["message"]["message_id"]
    assert deliveries[0].at >= fake.pushed_at(first_id)
    second_id = second["message"]["message_id"]
    assert fake.pushed_at(second_id) < deliveries[1].at  # the first push of the id
    headers, body = receiver.requests[0]
    assert headers["X-Bot-Api-Secret-Token"] == SECRET
    assert headers["Content-Type"] == "application/json"
    assert body == first
    assert receiver.requests[1][1] == receiver.requests[2][1] == second
    assert [request[1]["message"]["text"] for request in receiver.requests] == [
        "Xin chào",
        "Giá lúa?",
        "Giá lúa?",
        "Còn đó không?",
    ]
    assert fake.webhook_deliveries() == deliveries


def test_a_failed_delivery_is_recorded(fake: FakeZalo, api: httpx.Client) -> None:
    with Receiver() as receiver:
        url = receiver.url
    result(api, "setWebhook", url=url, secret_token=SECRET)  # nobody listens there now
    fake.send_user_message(TOKEN, fake.user(), "Alô")
    delivery = fake.wait_for_deliveries(1)[0]
    assert delivery.status is None and delivery.error


# ------------------------------------------------------ failures and waiting


def test_fail_next_answers_429_with_retry_after_and_500(fake: FakeZalo, api: httpx.Client) -> None:
    fake.fail_next("sendmessage", 429, "Too Many Requests", retry_after=7, times=2)
    fake.fail_next("sendMessage", 500, "Internal Server Error")
    for _ in range(2):
        body = assert_error(post(api, "sendMessage", chat_id=CHAT, text="a"), 429, "Too Many")
        assert body["parameters"] == {"retry_after": 7}
    body = assert_error(post(api, "sendMessage", chat_id=CHAT, text="a"), 500, "Internal")
    assert "parameters" not in body
    assert result(api, "sendMessage", chat_id=CHAT, text="a")["message_id"]
    assert [call.status for call in fake.calls("sendMessage")] == [429, 429, 500, 200]
    assert len(fake.sent_messages()) == 1
    with pytest.raises(ValueError):
        fake.fail_next("sendSticker", 500, "x")


def test_blocked_chat_gets_403(fake: FakeZalo, api: httpx.Client) -> None:
    fake.block(CHAT)
    response = post(api, "sendMessage", chat_id=CHAT, text="Chào")
    assert response.json() == {
        "ok": False,
        "error_code": 403,
        "description": "Forbidden: user blocked the bot",
    }
    assert response.status_code == 403
    assert result(api, "sendMessage", chat_id="ffff0000ffff0000", text="Chào")
    assert fake.sent_messages() == fake.sent_messages("ffff0000ffff0000")


def test_slow_keeps_the_request_in_flight(fake: FakeZalo, api: httpx.Client) -> None:
    fake.slow("sendMessage", 0.5)
    answers: list[httpx.Response] = []
    thread = threading.Thread(
        target=lambda: answers.append(post(api, "sendMessage", chat_id=CHAT, text="Chậm"))
    )
    thread.start()
    try:
        fake.wait_for_request("sendMessage", timeout=5)
        assert fake.calls("sendMessage") == []  # received, not answered yet
        fake.wait_for_message(CHAT, "Chậm", timeout=5)
    finally:
        thread.join()
    assert answers[0].status_code == 200
    with pytest.raises(AssertionError, match="no sendMessage request #2"):
        fake.wait_for_request("sendMessage", count=2, timeout=0.1)


def test_listener_sees_each_call(fake: FakeZalo, api: httpx.Client) -> None:
    seen: list[tuple[ZaloCall, str]] = []
    fake.add_listener(lambda call: seen.append((call, threading.current_thread().name)))
    result(api, "getMe")
    post(api, "sendMessage", chat_id=CHAT, text="")
    assert [(call.method, call.status) for call, _ in seen[-2:]] == [
        ("getMe", 200),
        ("sendMessage", 400),
    ]
    assert seen[-1][0] is fake.calls()[-1]
    assert seen[-1][1] == "fake-zalo"


def test_wait_for_times_out_with_a_summary(fake: FakeZalo, api: httpx.Client) -> None:
    result(api, "sendMessage", chat_id=CHAT, text="Một")
    with pytest.raises(AssertionError, match=r"(?s)0 of 1 expected calls.*sendMessage -> 200"):
        fake.wait_for(lambda call: call.method == "sendPhoto", timeout=0.2)
    with pytest.raises(AssertionError):
        fake.wait_for_message(CHAT, "Hai", timeout=0.2)


def test_stop_ends_a_pending_long_poll_quickly() -> None:
    answers: list[httpx.Response] = []
    with FakeZalo() as fake:

        def poll() -> None:
            with client_for(fake) as client:
                answers.append(client.post("getUpdates", json={"timeout": "30"}))

        thread = threading.Thread(target=poll)
        thread.start()
        fake.wait_for_request("getUpdates")
        time.sleep(0.1)
        started = time.perf_counter()
    assert time.perf_counter() - started < 2.0
    thread.join(5)
    assert answers[0].status_code == 408


# ------------------------------------------------------------------ photos

PHOTO = "https://hotro.lienminhhtx.vn/faq/von_gop/qr.png?t=ab12"


def test_send_photo_takes_an_image_url_and_an_optional_caption(
    fake: FakeZalo, api: httpx.Client
) -> None:
    sent = result(api, "sendPhoto", chat_id=CHAT, photo=PHOTO, caption="Mã QR: Vốn góp 🌾")
    assert HEX32.fullmatch(sent["message_id"]) and isinstance(sent["date"], int)
    response = api.post("sendPhoto", data={"chat_id": CHAT, "photo": "http://127.0.0.1:8080/a.png"})
    assert response.status_code == 200, response.text
    assert result(api, "sendPhoto", chat_id=CHAT, photo=PHOTO, caption="ư" * 2000)
    photos = fake.sent_photos(CHAT)
    assert photos[0] == {"chat_id": CHAT, "photo": PHOTO, "caption": "Mã QR: Vốn góp 🌾", **sent}
    assert [p["photo"] for p in photos] == [PHOTO, "http://127.0.0.1:8080/a.png", PHOTO]
    assert "caption" not in photos[1]
    assert fake.sent_photos("other") == []
    # Photos are not text messages.
    assert fake.sent_messages(CHAT) == []
    result(api, "sendMessage", chat_id=CHAT, text="Chào")
    assert [m["text"] for m in fake.wait_for_message(CHAT, timeout=2)] == ["Chào"]


@pytest.mark.parametrize(
    "photo",
    [
        None,
        "",
        "qr.png",
        "/faq/von_gop/qr.png",
        "ftp://x.example/a.png",
        "http://",
        "http://[::1",
        5,
    ],
)
def test_send_photo_needs_an_http_url(fake: FakeZalo, api: httpx.Client, photo: Any) -> None:
    response = post(api, "sendPhoto", chat_id=CHAT, photo=photo)
    assert_error(response, 400, "Bad Request: photo must be an HTTP or HTTPS image URL")
    assert fake.sent_photos() == []


def test_send_photo_checks_the_caption_chat_and_blocks(fake: FakeZalo, api: httpx.Client) -> None:
    for caption in ("a" * 2001, 42):
        response = post(api, "sendPhoto", chat_id=CHAT, photo=PHOTO, caption=caption)
        assert_error(response, 400, "Bad Request: caption must be at most 2000 characters")
    assert_error(post(api, "sendPhoto", chat_id="", photo=PHOTO), 400, "chat_id")
    fake.block(CHAT)
    assert_error(post(api, "sendPhoto", chat_id=CHAT, photo=PHOTO), 403, "blocked")
    assert fake.sent_photos() == []


def test_multipart_bodies_are_refused(api: httpx.Client) -> None:
    response = api.post(
        "sendPhoto", data={"chat_id": CHAT}, files={"photo": ("qr.png", b"\x89PNG", "image/png")}
    )
    assert_error(response, 400, "does not accept multipart")
