"""The law in chat: generated citations, "📜 Nguyên văn" under answers, /dieu, and law check."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

from bot.answers import render_entry
from bot.handlers.law import PAGE_CHARS, paginate
from knowledge.base import load_knowledge_base
from knowledge.check import check_all
from knowledge.law.corpus import LegalCorpus
from knowledge.law.register import SOURCES_DIR
from scheduler.deadlines import load_rules
from tests.processes import coopbot
from tests.unit.test_conversation import core, payloads, say, senders  # noqa: F401  (fixtures)

KB = load_knowledge_base()
CORPUS = LegalCorpus.load()
TODAY = dt.date(2026, 11, 30)


def _source_paragraphs() -> set[str]:
    lines: set[str] = set()
    for doc in CORPUS.register:
        if doc.source:
            text = (SOURCES_DIR / doc.source).read_text(encoding="utf-8")
            lines |= {line.strip() for line in text.splitlines() if line.strip()}
    return lines


SOURCE = _source_paragraphs()


def _quoted_lines(text: str) -> list[str]:
    """The lines of a quote page that are law text (not our headers and footers)."""
    skip = re.compile(r"^(📜|▪|\(trang \d+/\d+\)$|Chương |Mục \d)")
    return [line for line in text.splitlines() if line.strip() and not skip.match(line)]


# -- knowledge entries cite the corpus ----------------------------------------------------


def test_every_reference_of_every_entry_and_rule_resolves_and_is_current():
    report = check_all(KB, load_rules(), CORPUS, TODAY)
    assert report.findings == []
    assert report.references == report.resolved > 0
    assert report.to_clause > report.to_document  # most answers point at a clause
    assert len(report.unconfirmed) <= 5


def test_no_entry_cites_a_replaced_document_or_hedges_without_saying_why():
    for entry in KB:
        for ref in entry.basis:
            doc = CORPUS.register.documents[ref.doc]
            assert doc.in_force_on(TODAY), (entry.id, ref.id)
        if entry.unconfirmed:
            assert entry.missing_source and "/lienhe" in entry.answer, entry.id


def test_the_basis_line_is_generated_from_the_references():
    entry = KB.entries["so_thanh_vien_toi_thieu"]
    text = render_entry(entry, CORPUS, TODAY)
    basis = next(line for line in text.splitlines() if line.startswith("📘 Căn cứ: "))
    assert basis == f"📘 Căn cứ: {CORPUS.cite(entry.basis)}"
    assert basis.count("Luật HTX 2023 (17/2023/QH15)") == 1
    assert "Điều 4 khoản 7" in basis


def test_an_answer_whose_basis_was_replaced_later_says_so():
    entry = KB.entries["noi_dang_ky_htx"]
    assert any(ref.doc == "295/2026/NĐ-CP" for ref in entry.basis)
    current = render_entry(entry, CORPUS, TODAY)
    assert "⚠️" not in current
    # The day before NĐ 295/2026 took effect the same answer cites a decree not yet in force.
    before = render_entry(entry, CORPUS, dt.date(2026, 7, 22))
    assert "⚠️ Lưu ý: Nghị định 295/2026/NĐ-CP chưa có hiệu lực" in before and "/lienhe" in before


def test_law_check_finds_replaced_unresolved_and_stale_citations(tmp_path: Path):
    knowledge = tmp_path / "knowledge"
    shutil.copytree(
        Path(__file__).resolve().parents[2] / "knowledge",
        knowledge,
        ignore=shutil.ignore_patterns("*.py", "__pycache__", "law"),
    )
    path = knowledge / "entries" / "zz_bad.yml"
    path.write_text(
        "entries:\n"
        "  - id: zz_old\n    category: dang_ky\n    title: Căn cứ cũ\n"
        "    answer: Một câu trả lời dựa trên nghị định cũ đã bị thay thế.\n"
        '    basis: [{doc: "92/2024/NĐ-CP", article: 4}]\n    checked: 2026-11-30\n'
        "  - id: zz_missing\n    category: dang_ky\n    title: Khoản sai\n"
        "    answer: Một câu trả lời dẫn chiếu một khoản không tồn tại.\n"
        '    basis: [{doc: "17/2023/QH15", article: 33, clause: 12}]\n    checked: 2026-11-30\n'
        "  - id: zz_stale\n    category: dang_ky\n    title: Kiểm tra cũ\n"
        "    answer: Một câu trả lời kiểm tra trước khi nghị định mới ra đời.\n"
        '    basis: [{doc: "295/2026/NĐ-CP", article: 5}]\n    checked: 2026-01-10\n',
        encoding="utf-8",
    )
    report = check_all(load_knowledge_base(knowledge), [], CORPUS, TODAY)
    found = {(f.kind, f.where) for f in report.findings}
    assert found == {
        ("not_current", "entry zz_old"),
        ("unresolved", "entry zz_missing"),
        ("stale", "entry zz_stale"),
    }


def test_law_check_holds_deadline_rules_to_the_law_of_each_period(tmp_path: Path):
    rules = tmp_path / "deadlines.yml"
    rules.write_text(
        "rules:\n"
        "  - id: cu\n    title: Tờ khai\n"
        '    basis: [{refs: [{doc: "38/2019/QH14", article: 44}]}]\n'
        "    recurrence: {kind: monthly, day: 20}\n"
        "  - id: dung\n    title: Tờ khai\n"
        "    basis:\n"
        '      - {until: 2026-06-30, refs: [{doc: "38/2019/QH14", article: 44}]}\n'
        '      - {from: 2026-07-01, refs: [{doc: "252/2026/NĐ-CP", article: 10, clause: 2}]}\n'
        "    recurrence: {kind: monthly, day: 20}\n"
        "  - id: som\n    title: Tờ khai\n"
        "    basis:\n"
        '      - {until: 2026-06-30, refs: [{doc: "252/2026/NĐ-CP", article: 10, clause: 2}]}\n'
        '      - {from: 2026-07-01, refs: [{doc: "252/2026/NĐ-CP", article: 10, clause: 2}]}\n'
        "    recurrence: {kind: monthly, day: 20}\n",
        encoding="utf-8",
    )
    loaded = load_rules(rules)
    report = check_all([], loaded, CORPUS, TODAY)
    assert sorted(f.where for f in report.findings) == ["rule cu", "rule som"]
    dung = next(r for r in loaded if r.id == "dung")
    assert dung.basis_text(dt.date(2026, 6, 22)) == "Luật Quản lý thuế 2019 (38/2019/QH14), Điều 44"
    assert dung.basis_text(dt.date(2026, 12, 21)) == "Nghị định 252/2026/NĐ-CP, Điều 10 khoản 2"


def test_coopbot_law_check_passes_on_the_shipped_data(tmp_path: Path):
    result = coopbot(tmp_path, "law", "check")
    assert result.returncode == 0, result.stdout + result.stderr
    assert (
        "unresolved: 0; citing a document not in force: 0; checked before a cited document: 0"
        in (result.stdout)
    )
    assert result.stdout.rstrip().endswith("OK")


def test_coopbot_law_show_and_search(tmp_path: Path):
    shown = coopbot(tmp_path, "law", "show", "17/2023/QH15", "74", "--clause", "4")
    assert shown.returncode == 0, shown.stderr
    assert "[17/2023/QH15:d74:k4]" in shown.stdout
    clause = CORPUS.article("17/2023/QH15", 74).clause(4)  # type: ignore[union-attr]
    assert clause is not None and clause.text in shown.stdout
    missing = coopbot(tmp_path, "law", "show", "295/2026", "70")
    assert missing.returncode == 1 and "69 điều" in missing.stderr
    found = coopbot(tmp_path, "law", "search", "chu so huu huong loi")
    assert found.returncode == 0 and "295/2026/NĐ-CP:d66:" in found.stdout


def test_ask_json_sources_keep_their_shape_and_carry_the_clause_id(tmp_path: Path):
    result = coopbot(
        tmp_path, "ask", "--no-nlu", "--json", "HTX cần tối thiểu bao nhiêu thành viên chính thức"
    )
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["entry_id"] == "so_thanh_vien_toi_thieu"
    assert answer["sources"] and all(
        set(s) == {"document", "article", "clause_id"} for s in answer["sources"]
    )
    assert {"document": "Luật HTX 2023 (17/2023/QH15)", "article": "Điều 4 khoản 7",
            "clause_id": "17/2023/QH15:d4:k7"} in answer["sources"]  # fmt: skip


# -- "📜 Nguyên văn" and /dieu in chat -----------------------------------------------------


def test_quote_button_under_an_answer_shows_the_cited_clauses_verbatim(core):  # noqa: F811
    (answer,) = say(core, "thời hạn góp đủ vốn đã cam kết vào HTX là bao lâu")
    assert "law:thoi_han_gop_von" in payloads(answer)
    (quoted,) = say(core, payload="law:thoi_han_gop_von")
    assert quoted.text.startswith("📜 Trích nguyên văn căn cứ pháp lý của «")
    assert "Điều 74. Góp vốn điều lệ hợp tác xã, liên hiệp hợp tác xã" in quoted.text
    clause = CORPUS.article("17/2023/QH15", 74).clause(4)  # type: ignore[union-attr]
    assert clause is not None and clause.text in quoted.text
    lines = _quoted_lines(quoted.text)
    assert lines and all(line in SOURCE for line in lines)


def test_every_entry_quote_is_source_text_and_fits_a_message(core):  # noqa: F811
    for entry in KB:
        if not CORPUS.quotes(entry.basis):
            continue
        page, pages = 0, 1
        while page < pages:
            (reply,) = say(core, payload=f"law:{entry.id}:{page}")
            assert len(reply.text) <= 2000, entry.id  # Zalo's limit, the smallest
            for line in _quoted_lines(reply.text):
                # A paragraph longer than a page is cut at a space: each piece is source text.
                assert line in SOURCE or any(line in p for p in SOURCE), (entry.id, line[:60])
            found = re.search(r"\(trang \d+/(\d+)\)$", reply.text)
            pages = int(found.group(1)) if found else 1
            page += 1


def test_an_entry_opened_from_the_menu_also_offers_the_quote(core):  # noqa: F811
    (reply,) = say(core, payload="faq:so_thanh_vien_toi_thieu")
    assert "law:so_thanh_vien_toi_thieu" in payloads(reply)
    assert [c.ref_id for c in reply.citations][:1] == ["17/2023/QH15:d4:k7"]


def test_dieu_shows_an_article_paged_and_verbatim(core):  # noqa: F811
    (first,) = say(core, "/dieu 4")
    assert first.text.startswith("📜 Trích nguyên văn Luật HTX 2023 (17/2023/QH15)")
    assert "Điều 4. Giải thích từ ngữ" in first.text and "(trang 1/" in first.text
    assert payloads(first) == ["dieu:17-2023-qh15:4:1"] and not first.edit
    article = CORPUS.article("17/2023/QH15", 4)
    assert article is not None
    shown = _quoted_lines(first.text)[1:]  # the article heading starts every page
    payload = _next_page(first)
    while payload:
        (page,) = say(core, payload=payload)
        assert page.edit and len(page.text) <= 2000
        shown += _quoted_lines(page.text)[1:]
        payload = _next_page(page)
    assert "\n".join(shown) == article.text


def _next_page(reply) -> str | None:
    return next((b.payload for b in reply.buttons if "▶" in b.label), None)


def test_dieu_with_a_decree_and_bad_input(core):  # noqa: F811
    (decree,) = say(core, "/dieu 48 295/2026")
    assert (
        "Nghị định 295/2026/NĐ-CP" in decree.text and "Điều 48. Thông báo tạm ngừng" in decree.text
    )
    (missing,) = say(core, "/dieu 200")
    assert "115 điều" in missing.text
    (no_text,) = say(core, "/dieu 5 113/2024")
    assert "chưa có toàn văn" in no_text.text and "/lienhe" in no_text.text
    (usage,) = say(core, "/dieu")
    assert "/dieu 33" in usage.text and "17/2023/QH15" in usage.text
    (unknown,) = say(core, "/dieu 3 abc/xyz")
    assert "abc/xyz" in unknown.text
    (stale,) = say(core, payload="dieu:khong-co:1:0")
    assert stale.notice
    (stale_entry,) = say(core, payload="law:khong_co")
    assert stale_entry.notice


def test_paginate_keeps_every_character():
    text = "\n".join(["x" * 300] * 20 + ["y " * 2000])
    pages = paginate([text], 500)
    assert all(len(p) <= 500 for p in pages)
    assert "".join(pages).replace("\n", "").replace(" ", "") == text.replace("\n", "").replace(
        " ", ""
    )
    assert paginate(["ngắn"]) == ["ngắn"] and PAGE_CHARS < 2000
