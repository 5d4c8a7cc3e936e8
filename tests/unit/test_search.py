"""Lexical search: BM25 over entries, insensitive to diacritics and abbreviations."""

from __future__ import annotations

import math
from collections import Counter

import pytest

from knowledge.base import load_knowledge_base
from knowledge.search import BM25Index, KnowledgeSearch, search_terms
from nlu.build import TRAIN_DIR, load_examples


@pytest.fixture(scope="module")
def search() -> KnowledgeSearch:
    return KnowledgeSearch(load_knowledge_base(), load_examples(TRAIN_DIR))


@pytest.mark.parametrize(
    ("question", "entry_id"),
    [
        ("Hợp tác xã cần tối thiểu bao nhiêu thành viên", "so_thanh_vien_toi_thieu"),
        ("hop tac xa can toi thieu bao nhieu thanh vien", "so_thanh_vien_toi_thieu"),
        ("htx can toi thieu bn tv", "so_thanh_vien_toi_thieu"),
        ("hạn nộp tờ khai thuế quý", "han_khai_thue_quy"),
        ("han nop to khai thue quy", "han_khai_thue_quy"),
        ("cập nhật thông tin htx hằng năm", "cap_nhat_thong_tin_hang_nam"),
        ("ocop bao nhieu sao", "ocop_xep_hang_sao"),
    ],
)
def test_finds_the_entry_with_and_without_diacritics(search, question, entry_id):
    hits = search.search(question)
    assert hits and hits[0].entry.id == entry_id


def test_same_ranking_with_and_without_diacritics(search):
    accented = [h.entry.id for h in search.search("đại hội thành viên thường niên")]
    plain = [h.entry.id for h in search.search("dai hoi thanh vien thuong nien")]
    assert accented[:3] == plain[:3]


@pytest.mark.parametrize("text", ["", "   ", "???", "😀😀", "qwxzqwxz"])
def test_no_hits_for_empty_or_unknown_words(search, text):
    assert search.search(text) == []


def test_out_of_domain_words_give_low_coverage(search):
    hits = search.search("thủ tục ly hôn cần giấy tờ gì")
    assert not hits or hits[0].coverage < 0.6


def test_terms_drop_stopwords_and_add_bigrams():
    terms = search_terms("Cho em hỏi thành viên là gì")
    assert "thanh" in terms and "vien" in terms and "thanh_vien" in terms
    assert "em" not in terms and "gi" not in terms


def test_bm25_scores_are_the_okapi_formula():
    # Two rows, hand-computed: idf = ln(1 + (n - df + 0.5) / (df + 0.5)), k1 = 1.2, b = 0.75.
    docs = [Counter({"lua": 2, "gao": 1}), Counter({"lua": 1, "ca": 3, "phe": 1})]
    index = BM25Index(docs)
    avg = (3 + 5) / 2

    def idf(df: int) -> float:
        return math.log(1 + (2 - df + 0.5) / (df + 0.5))

    def weight(tf: int, df: int, length: int) -> float:
        return idf(df) * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / avg))

    assert search_terms("lua gao") == ["lua", "gao", "lua_gao"]
    ranked = index.rank("lua gao", 5)
    assert [row for row, _, _ in ranked] == [0, 1]
    assert ranked[0][1] == pytest.approx(weight(2, 2, 3) + weight(1, 1, 3))
    assert ranked[1][1] == pytest.approx(weight(1, 2, 5))
    # Coverage: the idf-weighted share of the query's terms the row holds; a term no row
    # holds ("lua_gao") weighs as much as the rarest known one.
    query_weight = idf(2) + idf(1) + idf(1)
    assert ranked[0][2] == pytest.approx((idf(2) + idf(1)) / query_weight)
    assert ranked[1][2] == pytest.approx(idf(2) / query_weight)
    assert index.rank("ngo khoai", 5) == []
