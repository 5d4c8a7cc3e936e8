"""Members asking steadily through the web chat, each answer checked (e2e tests, bench-retrain)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx

from knowledge.base import load_knowledge_base

__all__ = ["STREAM", "Sent", "Stream"]

# Questions with a sure answer from every model the tests and the benchmark use.
STREAM = (
    ("Hợp tác xã cần tối thiểu bao nhiêu thành viên?", "so_thanh_vien_toi_thieu"),
    ("htx la gi", "htx_la_gi"),
    ("hạn nộp tờ khai thuế quý là khi nào", "han_khai_thue_quy"),
)


@dataclass(frozen=True, slots=True)
class Sent:
    """One question: when it left and came back (monotonic), right or not, and why."""

    started: float
    finished: float
    ok: bool
    detail: str


class Stream(threading.Thread):
    """Asks ``rate`` questions a second from ``sessions`` web chat sessions until stopped.

    A question counts as failed unless the answer is HTTP 200 and starts with the
    title of the expected entry (so not the apology, not the fallback, not a
    "did you mean" from search when the NLU service did not answer).
    """

    def __init__(self, url: str, *, rate: float = 8.0, sessions: int = 8) -> None:
        super().__init__(daemon=True, name="question-stream")
        self.url = url
        self.interval = 1.0 / rate
        self.sessions = sessions
        self.sent: list[Sent] = []
        self.halt = threading.Event()
        kb = load_knowledge_base()
        self.titles = {intent: kb.entries[intent].title for _, intent in STREAM}

    def run(self) -> None:
        with httpx.Client(base_url=self.url, timeout=30.0) as client:
            n = 0
            next_at = time.monotonic()
            while not self.halt.is_set():
                text, intent = STREAM[n % len(STREAM)]
                session = f"stream-session-{n % self.sessions:04d}"
                started = time.monotonic()
                try:
                    response = client.post(
                        "/chat/api/messages", json={"session": session, "text": text}
                    )
                    replies = response.json().get("replies", [])
                    first = str(replies[0]["text"]) if replies else ""
                    ok = response.status_code == 200 and first.startswith(self.titles[intent])
                    detail = f"{response.status_code} {first[:60]}"
                except Exception as exc:  # counted as a failed question
                    ok, detail = False, repr(exc)
                self.sent.append(Sent(started, time.monotonic(), ok, detail))
                n += 1
                next_at += self.interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    def stop(self) -> list[Sent]:
        """Stops asking and returns every question asked."""
        self.halt.set()
        self.join(30)
        return list(self.sent)
