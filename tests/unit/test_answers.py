"""The answer service through the real NLU service (Rasa, trained model), and without it."""

from __future__ import annotations

import asyncio
import os

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.answers import AnswerKind, AnswerService
from bot.nlu_model.client import NLUClient
from bot.nlu_model.review_queue import ReviewLog
from bot.nlu_model.service import free_port
from bot.settings import Settings
from bot.store.db import ReviewQuestion
from knowledge.base import load_knowledge_base
from knowledge.search import KnowledgeSearch
from nlu.build import TRAIN_DIR, load_examples

KB = load_knowledge_base()
SEARCH = KnowledgeSearch(KB, load_examples(TRAIN_DIR))

OUT_OF_SCOPE = [
    "thời tiết Hà Nội ngày mai thế nào",
    "thoi tiet da nang hom nay co mua khong",
    "tối nay Việt Nam đá với Thái Lan mấy giờ",
    "ket qua bong da ngoai hang anh",
    "thủ tục ly hôn cần những giấy tờ gì",
    "thu tuc ly hon don phuong mat bao lau",
    "asdfghjkl",
    "jfkdsl qwpeoi zmxn",
]


@pytest.fixture
def engine(sqlite_engine):
    return sqlite_engine


def ask(url: str | None, questions: list[str], engine=None, threshold: float | None = None):
    async def go():
        client = NLUClient(url, timeout=5.0, token=os.environ["NLU_TOKEN"]) if url else None
        try:
            service = AnswerService(
                KB,
                SEARCH,
                client,
                threshold=threshold
                if threshold is not None
                else Settings().nlu_confidence_threshold,
                review_log=ReviewLog(engine) if engine is not None else None,
            )
            return [await service.answer(q) for q in questions]
        finally:
            if client is not None:
                await client.aclose()

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("Hợp tác xã cần tối thiểu bao nhiêu thành viên?", "so_thanh_vien_toi_thieu"),
        ("htx can toi thieu bao nhieu thanh vien", "so_thanh_vien_toi_thieu"),
        ("một thành viên được góp tối đa bao nhiêu phần trăm vốn điều lệ", "von_gop_toi_da"),
        ("han nop to khai thue quy la ngay nao", "han_khai_thue_quy"),
        ("Sản phẩm OCOP được xếp mấy sao?", "ocop_xep_hang_sao"),
    ],
)
def test_confident_intent_answers_with_its_cited_entry(nlu_url, question, entry_id):
    [answer] = ask(nlu_url, [question])
    assert answer.entry is not None and answer.entry.id == entry_id
    assert answer.kind in (AnswerKind.ENTRY, AnswerKind.SUGGESTED)
    assert not answer.fallback
    checked = answer.entry.checked.strftime("%d/%m/%Y")
    assert "Căn cứ:" in answer.text and f"Cập nhật: {checked}" in answer.text
    assert answer.entry.basis[0].label in answer.text


def test_old_law_premise_gets_the_current_answer(nlu_url):
    [answer] = ask(nlu_url, ["Có phải HTX phải có ít nhất 7 thành viên không?"])
    assert answer.entry is not None and answer.entry.id == "so_thanh_vien_toi_thieu"
    assert "05" in answer.text


@pytest.mark.parametrize("question", ["xin chào", "cam on ban nhieu", "bạn là người hay máy?"])
def test_chitchat_is_not_a_fallback(nlu_url, question):
    [answer] = ask(nlu_url, [question])
    assert answer.kind is AnswerKind.CHITCHAT
    assert answer.entry is None and not answer.fallback
    assert answer.text in {r for replies in KB.chitchat.values() for r in replies}


def test_out_of_scope_gets_the_honest_fallback_and_is_logged(nlu_url, engine):
    answers = ask(nlu_url, OUT_OF_SCOPE, engine)
    for answer in answers:
        assert answer.fallback, f"{answer.question!r} answered with {answer.entry}"
        assert answer.entry is None
        assert "/lienhe" in answer.text
        assert answer.buttons()[-1].payload == "cmd:lienhe"
    with Session(engine) as session:
        stored = [r.text for r in session.scalars(select(ReviewQuestion))]
    assert stored == OUT_OF_SCOPE


def test_nlu_down_answers_from_search(engine):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    accented, plain, weather = ask(
        url,
        ["hạn nộp tờ khai thuế quý là khi nào", "htx can toi thieu bao nhieu thanh vien",
         "thời tiết hôm nay thế nào"],
        engine,
    )  # fmt: skip
    assert accented.kind is AnswerKind.SUGGESTED and accented.entry.id == "han_khai_thue_quy"
    assert accented.text.startswith("Có phải bạn hỏi về")
    assert plain.entry is not None and plain.entry.id == "so_thanh_vien_toi_thieu"
    assert not accented.nlu_available and accented.intent is None
    assert weather.fallback
    with Session(engine) as session:
        reasons = [r.reason for r in session.scalars(select(ReviewQuestion))]
    assert reasons == ["nlu_unavailable"]


@pytest.mark.parametrize(
    "text",
    ["", "   ", "😀😀😀", "\x00\x01", "<b>htx</b> & co", "x" * 100_000, "hợp tác xã " * 3000],
)
def test_odd_text_never_raises(nlu_url, text):
    [answer] = ask(nlu_url, [text])
    assert answer.text
    assert answer.kind in set(AnswerKind)


def test_answers_offer_related_topics_and_staff(nlu_url):
    [answer] = ask(nlu_url, ["Hợp tác xã cần tối thiểu bao nhiêu thành viên?"])
    payloads = [b.payload for b in answer.buttons()]
    assert payloads[-1] == "cmd:lienhe"
    assert payloads[0] == f"law:{answer.entry.id}"  # the law verbatim first
    assert all(p.removeprefix("faq:") in KB.entries for p in payloads[1:-1])
    assert len(payloads) >= 2
