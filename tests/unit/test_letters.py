"""Letters: question extraction, the domain gate, 2012 premises, clause retrieval, the policy."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from bot.answers import AnswerKind, AnswerService
from bot.answers.questions import extract, is_letter
from bot.nlu_model.client import NLUClient
from bot.nlu_model.review_queue import ReviewLog
from bot.settings import Settings
from bot.store.db import ReviewQuestion
from knowledge.base import load_knowledge_base
from knowledge.domain import default_gate
from knowledge.law.corpus import default_corpus
from knowledge.law.references import parse_reference
from knowledge.law.retrieval import ClauseRetriever
from knowledge.premises import default_premises
from knowledge.search import KnowledgeSearch
from nlu.build import TRAIN_DIR, load_examples
from nlu.letters import load_letters

KB = load_knowledge_base()
SEARCH = KnowledgeSearch(KB, load_examples(TRAIN_DIR))
CORPUS = default_corpus()
GATE = default_gate()

ONE_QUESTION = (
    "Thưa luật sư, tôi là xã viên HTX dịch vụ nông nghiệp ở Thái Bình cũ, nay là Hưng Yên. "
    "HTX chúng tôi có 9 thành viên, trồng lúa và làm dịch vụ thuỷ lợi. Năm ngoái Đại hội "
    "xã viên bầu lại Ban quản trị nhưng có người bảo phải họp ngay trong tháng 1.\n"
    "Xin hỏi HTX phải họp Đại hội thành viên thường niên trong thời hạn bao lâu sau khi hết "
    "năm tài chính?\nTôi xin chân thành cảm ơn."
)
TWO_QUESTIONS = (
    "Chào Ban biên tập. Mẹ tôi góp 50 triệu vào HTX chè ở Thái Nguyên từ năm 2019. Nay mẹ "
    "già yếu, muốn xin ra khỏi HTX. Mẹ tôi rút vốn góp thì HTX có phải trả lại không? "
    "Nếu được thì trong thời hạn bao lâu? Mong nhận được phản hồi."
)
THREE_QUESTIONS = (
    "e chao a. htx e o dak lak co 12 tv, trong ca phe. e co 3 cau muon hoi a. "
    "1 la giam doc htx co dc kiem nhiem ke toan truong ko? 2 la htx co phai kiem toan doc "
    "lap bao cao tai chinh ko? 3 la thanh vien dc gop von toi da bao nhieu phan tram von "
    "dieu le? cam on a nhieu"
)
NO_QUESTION_MARK = (
    "Kính gửi Liên minh HTX tỉnh. Tổ hợp tác trồng rau của chúng tôi ở Lâm Đồng có 6 hộ, "
    "làm ăn đã ổn định được 3 năm. Cho tôi hỏi thủ tục chuyển tổ hợp tác thành hợp tác xã "
    "gồm những bước nào. Xin cảm ơn"
)


def test_a_letter_with_one_question_yields_that_question_and_its_story():
    letter = extract(ONE_QUESTION)
    assert letter.questions == (
        "Xin hỏi HTX phải họp Đại hội thành viên thường niên trong thời hạn bao lâu sau "
        "khi hết năm tài chính?",
    )
    assert letter.story.startswith("Thưa luật sư, tôi là xã viên HTX")
    assert "cảm ơn" not in letter.story  # the closing is neither question nor story
    assert is_letter(ONE_QUESTION)


def test_a_double_question_is_one_part_and_a_follow_up_keeps_its_topic():
    letter = extract(TWO_QUESTIONS)
    assert letter.questions == (
        "Mẹ tôi rút vốn góp thì HTX có phải trả lại không? Nếu được thì trong thời hạn bao lâu?",
    )
    assert "Thái Nguyên" in letter.story


def test_three_questions_without_diacritics_come_out_in_order():
    letter = extract(THREE_QUESTIONS)
    assert len(letter.questions) == 3
    assert "kiem nhiem ke toan truong" in letter.questions[0]
    assert "kiem toan doc lap" in letter.questions[1]
    assert "toi da bao nhieu phan tram" in letter.questions[2]
    assert all("cam on" not in q for q in letter.questions)


def test_a_question_cue_without_a_question_mark_is_found_and_a_short_message_is_itself():
    letter = extract(NO_QUESTION_MARK)
    assert letter.questions == (
        "Cho tôi hỏi thủ tục chuyển tổ hợp tác thành hợp tác xã gồm những bước nào.",
    )
    short = extract("htx can bao nhieu thanh vien")
    assert short.questions == ("htx can bao nhieu thanh vien",) and short.story == ""
    assert not is_letter("htx can bao nhieu thanh vien")
    assert extract("   ").questions == ()


def test_more_than_three_questions_are_cut_to_three():
    text = " ".join(f"Câu {i}: HTX có được làm việc số {i} không?" for i in range(1, 6))
    assert len(extract(text).questions) == 3


@pytest.mark.parametrize(
    ("story", "question", "field"),
    [
        (
            "Tôi là thành viên HTX rau sạch ở Mộc Châu, góp 30 triệu. Chồng tôi hay say rượu.",
            "Tôi muốn ly hôn thì nộp đơn ở đâu, con 4 tuổi ai nuôi?",
            "hon_nhan_gia_dinh",
        ),
        (
            "Anh chở hàng cho HTX bằng xe máy.",
            "Bị CSGT phạt vượt đèn đỏ thì mức phạt bao nhiêu, có bị giữ bằng lái không?",
            "giao_thong",
        ),
        (
            "Bố tôi mất năm 2024, để lại mảnh đất 300 m2, không có di chúc.",
            "Anh em tôi chia thừa kế thế nào?",
            "thua_ke",
        ),
        (
            "Em vay app 5 triệu, giờ họ gọi điện cho người thân khủng bố.",
            "Em phải làm sao, họ làm vậy có đúng luật không?",
            "vay_tieu_dung",
        ),
        (
            "Chị làm ở Bình Dương, bị trừ tiền mỗi tháng nhưng không ai đóng bhxh.",
            "Chị phải làm gì để đòi lại tiền bảo hiểm?",
            "bao_hiem_xa_hoi",
        ),
        (
            "Nhà hàng xóm lấn sang đất nhà tôi gần 1 mét.",
            "Tranh chấp đất như vậy giải quyết ở đâu?",
            "dat_dai",
        ),
        (
            "Đêm qua nhà tôi bị trộm mất con bò.",
            "Tôi báo ai, kẻ trộm bị xử lý thế nào?",
            "hinh_su",
        ),
    ],
)
def test_the_gate_sends_neighbouring_fields_away(story: str, question: str, field: str):
    verdict = GATE.judge([question], story)
    assert not verdict.in_scope
    assert verdict.field is not None and verdict.field.id == field


@pytest.mark.parametrize(
    ("story", "question"),
    [
        ("Bố tôi là xã viên HTX chè, mới mất.", "Phần vốn góp của bố ở HTX có được thừa kế không?"),
        ("Tôi làm kế toán cho HTX.", "HTX có phải đóng bhxh cho người lao động không?"),
        ("", "han nop to khai thue quy la ngay nao"),
        ("Tôi là chồng của chủ nhiệm HTX.", "HTX cần bao nhiêu thành viên để thành lập?"),
    ],
)
def test_the_gate_keeps_cooperative_questions(story: str, question: str):
    assert GATE.judge([question], story).in_scope


def test_a_field_term_inside_a_longer_one_counts_once():
    # "sang tên" and "sang tên sổ đỏ" are one land term: one HTX word still keeps the question.
    question = "Khi sang tên sổ đỏ cho HTX thì nhà cháu có phải nộp lệ phí trước bạ không ạ?"
    verdict = GATE.judge([question], "Bố cháu là xã viên HTX rau, định góp 3 sào ruộng.")
    assert verdict.in_scope
    assert verdict.terms == ("sang ten so do",)


def test_twice_as_many_field_words_as_cooperative_ones_send_a_question_away():
    story = "Vợ chồng tôi cùng là thành viên HTX tôm ở Cà Mau."
    question = "Chuyện HTX tôi không hỏi, tôi muốn hỏi ly hôn thì tài sản vợ chồng chia thế nào?"
    verdict = GATE.judge([question], story)
    assert not verdict.in_scope
    assert verdict.field is not None and verdict.field.id == "hon_nhan_gia_dinh"
    # One field word against one cooperative word: still the cooperative question.
    assert GATE.judge(["Vợ chồng tôi cùng góp vốn vào HTX thì HTX có cấp 2 giấy không?"]).in_scope


def test_hoi_in_a_name_is_not_asking():
    letter = extract(
        "HTX chúng tôi trồng lúa ở Thái Bình, có 9 thành viên. Tôi phải báo cáo lại cho Hội "
        "đồng quản trị về quỹ hỗ trợ phát triển HTX. Quỹ đó cho HTX vay với lãi suất bao nhiêu?"
    )
    assert letter.questions == ("Quỹ đó cho HTX vay với lãi suất bao nhiêu?",)
    assert "Hội đồng quản trị" in letter.story


def test_premises_from_the_2012_law_are_recognised_and_stories_are_not():
    premises = default_premises()
    found = premises.found("Luật quy định HTX phải có ít nhất 7 xã viên, đúng không ạ?")
    assert [p.id for p in found] == ["bay_thanh_vien"]
    assert "05 thành viên" in found[0].correction
    found = premises.found("theo luat htx 2012 thi dai hoi thuong nien phai hop trong 3 thang")
    assert [p.id for p in found] == ["dai_hoi_3_thang"]
    assert premises.found("HTX chúng tôi có 7 thành viên, trồng lúa") == []
    for premise in premises.premises:  # every correction cites a clause we hold
        assert all(CORPUS.resolve(ref) is not None for ref in premise.basis)


def test_clause_retrieval_understands_old_terms_and_missing_diacritics():
    retriever = CORPUS.retriever
    hits = retriever.search("xa vien muon rut von khoi htx thi co duoc tra lai khong", 3)
    assert hits[0].article_id == "17/2023/QH15:d90"
    hits = retriever.search("Ban quản trị HTX có mấy người, nhiệm kỳ mấy năm?", 5)
    assert "17/2023/QH15:d65" in ClauseRetriever.articles(hits)
    # The synonym table brings in the law's words: "ban quản trị" also searches "hội đồng".
    plain = ClauseRetriever(CORPUS, synonyms={})
    assert "dong" not in plain.query_terms("ban quan tri")
    assert "dong" in retriever.query_terms("ban quan tri")
    assert "xa" not in retriever.query_terms("xa vien")  # "xã" would pull in "hợp tác xã"
    assert retriever.search("zzzz qqqq") == []


def test_the_clause_index_builds_from_its_cache_in_under_two_seconds(tmp_path):
    ClauseRetriever(CORPUS, cache_dir=tmp_path)  # a cold build writes the cache
    assert list(tmp_path.glob("law-clauses-*.json.gz"))
    started = time.perf_counter()
    warm = ClauseRetriever(CORPUS, cache_dir=tmp_path)
    assert time.perf_counter() - started < 2.0
    assert warm.search("thời hạn góp đủ vốn điều lệ", 5)


def test_the_letter_set_is_labelled_with_what_exists():
    letters = load_letters()
    inside = [x for x in letters if x.in_scope]
    outside = [x for x in letters if not x.in_scope]
    assert len(inside) >= 150 and len(outside) >= 50
    assert {x.split for x in letters} == {"train", "test"}
    fields = {f.id for f in GATE.fields}
    for letter in letters:
        assert 150 <= len(letter.text) <= 1600, letter.id
        if letter.in_scope:
            assert letter.entries or letter.articles, letter.id
            assert all(e in KB.entries for e in letter.entries), letter.id
            for article in letter.articles:
                assert CORPUS.resolve(parse_reference(article)) is not None, (letter.id, article)
        else:
            assert letter.field in fields, letter.id
    unaccented = [x for x in inside if not x.accents]
    assert len(unaccented) >= len(inside) // 4


# -- the policy through the real NLU service -------------------------------------------


def ask(url: str, texts: list[str], engine=None):
    async def go():
        async with NLUClient(url, timeout=10.0, token=os.environ["NLU_TOKEN"]) as client:
            service = AnswerService(
                KB,
                SEARCH,
                client,
                threshold=Settings().nlu_confidence_threshold,
                review_log=ReviewLog(engine) if engine is not None else None,
                corpus=CORPUS,
            )
            return [await service.answer(t) for t in texts]

    return asyncio.run(go())


def test_a_letter_gets_its_entry_with_the_2012_premise_corrected(nlu_url: str):
    letter = (
        "Kính gửi Liên minh HTX. Chúng tôi là 5 hộ nuôi tôm ở Cà Mau, muốn lập hợp tác xã để "
        "bán tôm cho công ty chế biến. Cán bộ xã nói Luật quy định phải có ít nhất 7 xã viên "
        "mới được thành lập nên chúng tôi đang đi vận động thêm người. Cho tôi hỏi hợp tác xã "
        "cần tối thiểu bao nhiêu thành viên để thành lập? Xin cảm ơn."
    )
    (answer,) = ask(nlu_url, [letter])
    assert answer.kind is AnswerKind.ENTRY
    assert answer.entry is not None and answer.entry.id == "so_thanh_vien_toi_thieu"
    first_line = answer.text.splitlines()[0]
    assert first_line.startswith("⚠️ Lưu ý: Con số 07 thành viên là quy định của Luật HTX 2012")
    assert "05 thành viên chính thức" in first_line and "Điều 4 khoản 7" in first_line


def test_a_neighbouring_field_letter_gets_ngoai_pham_vi_and_is_logged(nlu_url: str, sqlite_engine):
    letter = (
        "Thưa luật sư, tôi là thành viên HTX dệt thổ cẩm ở Lào Cai, có góp vốn 20 triệu. "
        "Chồng tôi đi làm xa, nay về đòi ly hôn và đòi chia đôi căn nhà bố mẹ tôi cho riêng. "
        "Xin hỏi khi ly hôn thì nhà bố mẹ cho riêng tôi có phải chia cho chồng không? Con tôi "
        "6 tuổi thì ai được nuôi? Tôi xin cảm ơn."
    )
    (answer,) = ask(nlu_url, [letter], sqlite_engine)
    assert answer.kind is AnswerKind.OUT_OF_SCOPE and answer.field == "hon_nhan_gia_dinh"
    assert answer.entry is None and answer.citations == ()
    assert "hôn nhân và gia đình" in answer.text and "Toà án" in answer.text
    assert answer.fallback
    with Session(sqlite_engine) as session:
        rows = session.scalars(select(ReviewQuestion)).all()
    assert [(r.reason, r.text) for r in rows] == [("out_of_scope", letter)]


def test_a_letter_no_entry_answers_gets_the_clause_quoted_verbatim(nlu_url: str):
    letter = (
        "Chào Ban biên tập, HTX rau an toàn của chúng tôi ở Lâm Đồng năm 2025 bị mất mùa vì "
        "mưa đá, cuối năm quyết toán thì HTX bị lỗ gần 300 triệu đồng. Cho tôi hỏi khoản lỗ "
        "của hợp tác xã được xử lý thế nào: khoản lỗ có được chuyển sang năm sau để bù lỗ "
        "bằng thu nhập năm sau không, hay phải dùng quỹ dự phòng tài chính để bù lỗ, hay thành "
        "viên phải góp thêm để bù khoản lỗ? Xin cảm ơn."
    )
    (answer,) = ask(nlu_url, [letter])
    assert answer.kind is AnswerKind.CLAUSE, answer.text
    (clause,) = answer.clauses
    assert clause.startswith("17/2023/QH15:d89:")
    quote = CORPUS.resolve(parse_reference(clause))
    assert quote is not None and f"«{quote.text.strip()}»" in answer.text  # verbatim
    assert answer.text.startswith("Quy định liên quan nhất: Điều 89 khoản")
    callbacks = [b.payload for b in answer.buttons()]
    assert "dieu:17-2023-qh15:89" in callbacks and "cmd:lienhe" in callbacks


def test_a_letter_nothing_answers_gets_the_honest_fallback(nlu_url: str):
    letter = (
        "Chào anh chị. Em ở Tây Ninh, năm nay em 30 tuổi, đang trồng mì và nuôi bò. Mấy hôm "
        "nay trời nắng quá, bò ăn ít, em lo lắm. Cho em hỏi năm nay giá mì có lên không, em "
        "nên bán lúc nào? Em cảm ơn."
    )
    (answer,) = ask(nlu_url, [letter])
    assert answer.kind is AnswerKind.FALLBACK and answer.entry is None and not answer.clauses


def test_a_letter_with_two_questions_gets_two_answers_in_order(nlu_url: str):
    letter = (
        "Thưa Ban biên tập, HTX chúng tôi ở Sơn La có 15 thành viên, trồng xoài xuất khẩu. "
        "Chúng tôi có hai câu hỏi. Thứ nhất, một thành viên được góp vốn tối đa bao nhiêu phần "
        "trăm vốn điều lệ của HTX? Thứ hai, HTX phải họp đại hội thành viên thường niên trong "
        "thời hạn bao lâu kể từ khi kết thúc năm tài chính? Xin cảm ơn."
    )
    (answer,) = ask(nlu_url, [letter])
    assert [p.entry.id if p.entry else p.kind for p in answer.parts] == [
        "von_gop_toi_da",
        "dai_hoi_thuong_nien",
    ]
    assert [r.text for r in answer.to_replies()] == [p.text for p in answer.parts]
