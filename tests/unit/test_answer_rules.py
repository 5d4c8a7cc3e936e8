"""The answer service's decision rules, with the NLU verdict injected (httpx MockTransport)."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from bot.answers import AnswerKind, AnswerService
from bot.nlu_model.client import NLUClient
from knowledge.base import load_knowledge_base
from knowledge.search import KnowledgeSearch
from nlu.build import TRAIN_DIR, load_examples

KB = load_knowledge_base()
SEARCH = KnowledgeSearch(KB, load_examples(TRAIN_DIR))


def verdict(*ranking: tuple[str, float]) -> httpx.MockTransport:
    body = {
        "intent": {"name": ranking[0][0], "confidence": ranking[0][1]},
        "intent_ranking": [{"name": n, "confidence": c} for n, c in ranking],
    }
    return httpx.MockTransport(lambda _request: httpx.Response(200, json=body))


def answer(question: str, transport: httpx.MockTransport, threshold: float = 0.5):
    async def go():
        async with NLUClient("http://nlu.test", transport=transport) as client:
            service = AnswerService(KB, SEARCH, client, threshold=threshold)
            return await service.answer(question)

    return asyncio.run(go())


def test_confident_intent_answers_its_entry():
    result = answer("bất kỳ", verdict(("von_gop_toi_da", 0.9), ("von_gop_toi_thieu", 0.05)))
    assert result.kind is AnswerKind.ENTRY and result.entry.id == "von_gop_toi_da"
    assert result.matched_by == "nlu" and result.confidence == pytest.approx(0.9)


def test_confident_out_of_scope_is_a_fallback_even_with_domain_words():
    result = answer("hạn nộp thuế quý", verdict(("out_of_scope", 0.8), ("han_khai_thue_quy", 0.1)))
    assert result.fallback and result.entry is None


def test_unsure_intent_falls_back_to_search_with_a_question_frame():
    result = answer(
        "hạn nộp tờ khai thuế quý là khi nào",
        verdict(("han_khai_thue_thang", 0.3), ("han_khai_thue_quy", 0.25)),
    )
    assert result.kind is AnswerKind.SUGGESTED
    assert result.entry.id == "han_khai_thue_quy"
    assert result.text.startswith("Có phải bạn hỏi về «")


def test_unsure_intent_confirmed_by_search_is_answered_plainly():
    result = answer(
        "hạn nộp tờ khai thuế quý là khi nào",
        verdict(("han_khai_thue_quy", 0.3), ("han_khai_thue_thang", 0.25)),
    )
    assert result.kind is AnswerKind.ENTRY and result.matched_by == "nlu+search"
    assert not result.text.startswith("Có phải")


def test_basis_is_grouped_by_document():
    result = answer("x", verdict(("so_thanh_vien_toi_thieu", 0.9)))
    basis_line = next(line for line in result.text.splitlines() if line.startswith("📘"))
    assert basis_line.count("Luật HTX 2023 (17/2023/QH15)") == 1
    assert "Điều 4 khoản 7" in basis_line


def test_search_match_needs_classifier_support_when_it_leans_out_of_scope():
    question = "hạn nộp tờ khai thuế quý là khi nào"
    leaning_away = answer(question, verdict(("out_of_scope", 0.4), ("greet", 0.2), ("help", 0.1)))
    assert leaning_away.fallback
    supported = answer(
        question, verdict(("out_of_scope", 0.4), ("han_khai_thue_quy", 0.3), ("help", 0.1))
    )
    assert supported.entry is not None and supported.entry.id == "han_khai_thue_quy"


def test_unsure_and_no_lexical_match_is_an_honest_fallback():
    result = answer("xyz abc qwe", verdict(("htx_la_gi", 0.2), ("to_hop_tac", 0.1)))
    assert result.fallback
    assert [b.payload for b in result.buttons()][-1] == "cmd:lienhe"
    # Suggestions come from the classifier's ranking.
    assert [e.id for e in result.suggestions][:2] == ["htx_la_gi", "to_hop_tac"]


def test_chitchat_reply_has_no_entry():
    result = answer("chào", verdict(("greet", 0.95)))
    assert result.kind is AnswerKind.CHITCHAT and not result.fallback
    assert result.to_json()["entry_id"] is None and result.to_json()["sources"] == []


def test_unknown_intent_from_a_newer_model_does_not_crash():
    result = answer("htx là gì", verdict(("intent_moi_chua_co", 0.99)))
    assert result.entry is None or result.entry.id == "htx_la_gi"


def test_json_contract_types():
    data = answer("x", verdict(("dai_hoi_thuong_nien", 0.88))).to_json()
    keys = {"text", "intent", "confidence", "entry_id", "answer", "sources", "fallback"}
    assert keys <= set(data)
    assert data["entry_id"] == "dai_hoi_thuong_nien" and data["fallback"] is False
    assert data["sources"][0]["document"].startswith("Luật HTX 2023 (17/2023/QH15)")
    assert data["sources"][0]["clause_id"].startswith("17/2023/QH15:d59")


def test_unsure_classifier_and_a_close_search_match_agree_on_the_entry():
    # By words alone the quorum entry edges out the founding-members entry.
    question = "htx can bao nhieu thanh vien"
    assert SEARCH.search(question)[0].entry.id != "so_thanh_vien_toi_thieu"
    result = answer(
        question, verdict(("so_thanh_vien_toi_thieu", 0.32), ("dai_hoi_bieu_quyet", 0.05))
    )
    assert result.kind is AnswerKind.ENTRY and result.matched_by == "nlu+search"
    assert result.entry.id == "so_thanh_vien_toi_thieu"
    # Too unsure a classifier does not overrule the search's favourite.
    weak = answer(question, verdict(("so_thanh_vien_toi_thieu", 0.2), ("dai_hoi_bieu_quyet", 0.1)))
    assert weak.kind is AnswerKind.SUGGESTED and weak.entry.id != "so_thanh_vien_toi_thieu"
