"""The legal corpus: parsing every source text, the register, references, validity and checks."""

from __future__ import annotations

import datetime as dt
import re
import shutil
from pathlib import Path

import pytest

from knowledge.law.corpus import LegalCorpus, UnresolvedReference
from knowledge.law.parser import POINT_LETTERS, parse_text, split_header
from knowledge.law.references import Reference, parse_reference
from knowledge.law.register import (
    DEFAULT_REGISTER,
    SOURCES_DIR,
    DocumentStatus,
    RegisterError,
    load_register,
)

CORPUS = LegalCorpus.load()
LUAT = "17/2023/QH15"
ND295 = "295/2026/NĐ-CP"
ND45 = "45/2021/NĐ-CP"
ND252 = "252/2026/NĐ-CP"


def _manifest_counts() -> dict[str, int]:
    """Article counts per file, from the table in sources/MANIFEST.md."""
    counts = {}
    for line in (SOURCES_DIR / "MANIFEST.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) > 10 and cells[1].startswith("`") and cells[1].endswith(".md`"):
            match = re.match(r"(\d+) \(1–(\d+)\)", cells[9])
            if match:
                counts[cells[1].strip("`")] = int(match.group(1))
    return counts


def _source_lines(number: str) -> set[str]:
    doc = CORPUS.register.documents[number]
    assert doc.source is not None
    _, body = split_header((SOURCES_DIR / doc.source).read_text(encoding="utf-8"))
    return {line.strip() for line in body.splitlines() if line.strip()}


# -- parsing -------------------------------------------------------------------------------


def test_every_article_of_every_document_is_parsed():
    manifest = _manifest_counts()
    assert set(manifest) == {d.source for d in CORPUS.register if d.has_text}
    for doc in CORPUS.register:
        if not doc.has_text:
            continue
        articles = CORPUS.texts[doc.number].articles
        assert len(articles) == manifest[doc.source] == doc.articles, doc.number
        assert sorted(articles) == list(range(1, len(articles) + 1)), doc.number
        assert all(a.title and a.text for a in articles.values()), doc.number
    assert {n: len(CORPUS.texts[n].articles) for n in (LUAT, ND295, ND45, ND252)} == {
        LUAT: 115,
        ND295: 69,
        ND45: 59,
        ND252: 76,
    }


def test_chapters_as_the_manifest_says():
    chapters = {n: len(CORPUS.texts[n].chapters) for n in (LUAT, ND295, ND45, ND252)}
    assert chapters == {LUAT: 12, ND295: 6, ND45: 0, ND252: 7}
    for number in (LUAT, ND295, ND252):
        in_chapters = [a for c in CORPUS.texts[number].chapters for a in c.articles]
        assert in_chapters == sorted(CORPUS.texts[number].articles), number


def test_clause_point_and_subpoint_numbering_is_contiguous():
    for parsed in CORPUS.texts.values():
        for article in parsed.articles.values():
            numbers = [c.number for c in article.clauses]
            assert numbers == list(range(1, len(numbers) + 1)), article.id
            groups = [c.points for c in article.clauses] + [article.points]
            for points in groups:
                letters = [p.label for p in points]
                assert letters == list(POINT_LETTERS[: len(letters)]), article.id
                for point in points:
                    subs = [s.label for s in point.subpoints]
                    assert subs == [f"{point.label}.{i}" for i in range(1, len(subs) + 1)], point.id


def test_counts_of_units_are_stable():
    # A change in the parser that loses or invents a unit shows here first.
    def count(number: str) -> tuple[int, int, int]:
        articles = CORPUS.texts[number].articles.values()
        clauses = [c for a in articles for c in a.clauses]
        points = [p for c in clauses for p in c.points]
        return len(clauses), len(points), sum(len(p.subpoints) for p in points)

    assert count(LUAT) == (525, 426, 0)
    assert count(ND295) == (287, 157, 0)
    assert count(ND45) == (182, 237, 0)
    assert count(ND252)[:2] == (352, 624)
    assert count(ND252)[2] > 100


TRICKY = [
    # No space after the clause number and no final full stop: kept as in the source.
    (
        f"{LUAT}:d4:k26",
        "26.Vốn góp tối đa là mức vốn góp cao nhất mà cá nhân, tổ chức được góp vào vốn điều "
        "lệ của hợp tác xã, liên hiệp hợp tác xã",
    ),
    (
        f"{LUAT}:d33:k1:e",
        "e) Thành viên không sử dụng sản phẩm, dịch vụ hoặc không góp sức lao động trong thời "
        "gian liên tục theo quy định của Điều lệ;",
    ),
    # A point followed by an unnumbered paragraph that belongs to it.
    (
        f"{ND252}:d10:k5:c",
        "c) Chậm nhất là ngày cuối cùng của tháng thứ 04 kể từ ngày kết thúc năm dương lịch đối "
        "với hồ sơ quyết toán thuế thu nhập cá nhân của cá nhân có thu nhập từ tiền lương, tiền "
        "công trực tiếp quyết toán thuế.\nTrường hợp trong 01 năm dương lịch, cá nhân có mặt tại "
        "Việt Nam dưới 183 ngày nhưng tính trong 12 tháng liên tục kể từ ngày đầu tiên có mặt "
        "tại Việt Nam từ 183 ngày trở lên thì thời hạn nộp hồ sơ quyết toán thuế thu nhập cá "
        "nhân của năm đầu tiên chậm nhất là ngày cuối cùng của tháng thứ 04 kể từ ngày cuối cùng "
        "của tháng tính đủ 12 tháng liên tục;",
    ),
    # A clause with a second paragraph and no points.
    (
        f"{ND252}:d10:k2",
        "2. Đối với loại thuế khai theo tháng, thời hạn nộp hồ sơ khai thuế chậm nhất là ngày "
        "thứ 20 của tháng tiếp theo tháng phát sinh nghĩa vụ thuế.",
    ),
    # A sub-point with the Vietnamese letter đ, and the paragraph after it.
    (
        f"{ND252}:d9:k2:đ.2",
        "đ.2) Kỳ quyết toán thuế đối với thuế thu nhập cá nhân được xác định theo năm dương lịch."
        "\nTrường hợp trong một năm dương lịch, cá nhân có mặt tại Việt Nam dưới 183 ngày nhưng "
        "tổng số ngày có mặt tại Việt Nam trong 12 tháng liên tục kể từ ngày đầu tiên có mặt tại "
        "Việt Nam từ 183 ngày trở lên thì kỳ quyết toán thuế thu nhập cá nhân của năm đầu tiên "
        "được xác định là 12 tháng liên tục kể từ ngày đầu tiên có mặt tại Việt Nam.",
    ),
    (
        f"{ND252}:d3:k7",
        "7. Ngày hết thời hạn nộp hồ sơ khai thuế, thời hạn nộp thuế, thời hạn cơ quan quản lý "
        "thuế giải quyết hồ sơ thuế là ngày cuối cùng của thời hạn nộp hồ sơ khai thuế, thời "
        "hạn nộp thuế, thời hạn cơ quan quản lý thuế giải quyết hồ sơ thuế theo quy định của "
        "pháp luật quản lý thuế. Trường hợp ngày cuối cùng của thời hạn nộp hồ sơ khai thuế, "
        "thời hạn nộp thuế, thời hạn cơ quan quản lý thuế giải quyết hồ sơ thuế trùng với ngày "
        "nghỉ theo quy định thì ngày cuối cùng của thời hạn được tính là ngày làm việc liền kề "
        "sau ngày nghỉ đó.",
    ),
    # The last article before the signature block: "Nơi nhận" is not law text.
    (
        f"{ND252}:d76",
        "Các Bộ trưởng, Thủ trưởng cơ quan ngang bộ, Chủ tịch Ủy ban nhân dân tỉnh, thành phố "
        "trực thuộc trung ương và các tổ chức, cá nhân có liên quan chịu trách nhiệm thi hành "
        "Nghị định này.",
    ),
    (
        f"{ND295}:d69:k3",
        "3. Bộ trưởng, Thủ trưởng cơ quan ngang bộ, Chủ tịch Ủy ban nhân dân cấp tỉnh, Chủ tịch "
        "Ủy ban nhân dân cấp xã và các đối tượng áp dụng của Nghị định chịu trách nhiệm thi hành "
        "Nghị định này.",
    ),
]


@pytest.mark.parametrize(("ref_id", "expected"), TRICKY)
def test_tricky_units_parse_exactly(ref_id, expected):
    quote = CORPUS.resolve(parse_reference(ref_id))
    assert quote is not None and quote.text == expected


def test_article_intro_heading_and_place():
    article = CORPUS.article(LUAT, 4)
    assert article is not None
    assert article.heading == "Điều 4. Giải thích từ ngữ"
    assert article.intro == "Trong Luật này, các từ ngữ dưới đây được hiểu như sau:"
    assert article.chapter == "Chương I: NHỮNG QUY ĐỊNH CHUNG"
    assert len(article.clauses) == 26
    director = CORPUS.article(LUAT, 64)
    assert director is not None and director.section is not None
    assert director.section.startswith("Mục 2. TỔ CHỨC QUẢN TRỊ ĐẦY ĐỦ")
    decree = CORPUS.article(ND295, 12)
    assert decree is not None and decree.title.startswith("ủy quyền")  # source quirk kept
    assert CORPUS.article(ND252, 10).section.startswith("Mục 2. KHAI THUẾ")  # type: ignore[union-attr]


def test_every_unit_is_verbatim_source_text_without_tags_or_signature():
    for number, parsed in CORPUS.texts.items():
        lines = _source_lines(number)
        for article in parsed.articles.values():
            assert article.title in {
                line.split(". ", 1)[-1] for line in lines if line.startswith("Điều ")
            }
            for line in article.text.split("\n"):
                assert line in lines, (article.id, line[:80])
                assert not re.match(r"^\(Điều \d+ (Luật|Nghị định) số", line), article.id
                assert not line.startswith("Nơi nhận"), article.id
                assert not re.match(r"^Chương [IVXLC]+", line), article.id


def test_parse_is_deterministic_and_ids_are_unique():
    for number, parsed in CORPUS.texts.items():
        doc = CORPUS.register.documents[number]
        again = parse_text((SOURCES_DIR / str(doc.source)).read_text(encoding="utf-8"), number)
        assert again.articles == parsed.articles
        ids = [
            unit.id
            for a in parsed.articles.values()
            for unit in (a, *a.clauses, *(p for c in a.clauses for p in c.points))
        ]
        assert len(ids) == len(set(ids))
        assert all(i.startswith(f"{number}:d") for i in ids)


def test_parser_rejects_a_text_without_header_or_articles():
    from knowledge.law.parser import LegalTextError

    with pytest.raises(LegalTextError, match="header"):
        parse_text("Điều 1. X\n\nNội dung.\n", "1/2020/QH14")
    with pytest.raises(LegalTextError, match="no article"):
        parse_text("---\nso_hieu: x\n---\nChỉ có lời nói đầu.\n")
    with pytest.raises(LegalTextError, match="twice"):
        parse_text("---\nso_hieu: 1/2020/QH14\n---\nĐiều 1. A\n\nx\n\nĐiều 1. B\n\ny\n")


def test_a_small_text_parses_into_the_tree():
    text = (
        "---\nso_hieu: 9/2099/QH99\n---\n"
        "Chương I\n\nQUY ĐỊNH CHUNG\n\n"
        "Điều 1. Phạm vi\n\n(Điều 1 Luật số 9/2099/QH99, có hiệu lực)\n\nMở đầu.\n\n"
        "1. Khoản một:\n\na) Điểm a;\n\nb) Điểm b:\n\nb.1) Con một;\n\nb.2) Con hai.\n\n"
        "Câu kết của điểm b.\n\n2. Khoản hai.\n\nĐoạn hai của khoản hai.\n\n"
        "Chương II: Điều Khoản Thi Hành\n\nĐiều 2. Hiệu lực\n\nLuật có hiệu lực.\n\n"
        "Nơi nhận:\n\n- Các bộ;\n"
    )
    parsed = parse_text(text)
    one, two = parsed.articles[1], parsed.articles[2]
    assert one.intro == "Mở đầu."
    assert [c.id for c in one.clauses] == ["9/2099/QH99:d1:k1", "9/2099/QH99:d1:k2"]
    point_b = one.clauses[0].point("b")
    assert point_b is not None
    assert [s.id for s in point_b.subpoints] == ["9/2099/QH99:d1:k1:b.1", "9/2099/QH99:d1:k1:b.2"]
    assert point_b.subpoints[1].text == "b.2) Con hai.\nCâu kết của điểm b."
    assert one.clauses[1].text == "2. Khoản hai.\nĐoạn hai của khoản hai."
    assert two.text == "Luật có hiệu lực."
    assert two.chapter == "Chương II: Điều Khoản Thi Hành"
    assert [c.title for c in parsed.chapters] == ["QUY ĐỊNH CHUNG", "Điều Khoản Thi Hành"]


# -- register and validity ------------------------------------------------------------------


def test_register_lists_the_documents_cited_without_text():
    for number in (
        "113/2024/NĐ-CP",
        "108/2025/QH15",
        "254/2026/NĐ-CP",
        "67/2025/QH15",
        "198/2025/QH15",
        "92/2024/NĐ-CP",
        "126/2020/NĐ-CP",
        "123/2020/NĐ-CP",
        "38/2019/QH14",
        "23/2012/QH13",
    ):
        doc = CORPUS.register.get(number)
        assert doc is not None and not doc.has_text and doc.title, number


@pytest.mark.parametrize(
    ("number", "day", "status"),
    [
        (LUAT, dt.date(2024, 6, 30), DocumentStatus.NOT_YET_IN_FORCE),
        (LUAT, dt.date(2024, 7, 1), DocumentStatus.IN_FORCE),
        ("23/2012/QH13", dt.date(2024, 6, 30), DocumentStatus.IN_FORCE),
        ("23/2012/QH13", dt.date(2024, 7, 1), DocumentStatus.REPLACED),
        ("92/2024/NĐ-CP", dt.date(2026, 7, 22), DocumentStatus.IN_FORCE),
        ("92/2024/NĐ-CP", dt.date(2026, 7, 23), DocumentStatus.REPLACED),
        (ND295, dt.date(2026, 7, 22), DocumentStatus.NOT_YET_IN_FORCE),
        (ND295, dt.date(2026, 7, 23), DocumentStatus.IN_FORCE),
        ("38/2019/QH14", dt.date(2026, 6, 30), DocumentStatus.IN_FORCE),
        ("38/2019/QH14", dt.date(2026, 7, 1), DocumentStatus.REPLACED),
        (ND252, dt.date(2026, 7, 1), DocumentStatus.IN_FORCE),
        (ND45, dt.date(2026, 11, 30), DocumentStatus.PARTLY_REPEALED),
    ],
)
def test_validity_on_a_day(number, day, status):
    doc = CORPUS.register.documents[number]
    assert doc.status_on(day) is status
    assert doc.in_force_on(day) is status.current


def test_replacements_point_both_ways():
    for doc in CORPUS.register:
        if doc.replaced_by:
            assert doc.number in CORPUS.register.documents[doc.replaced_by].replaces
        for old in doc.replaces:
            assert CORPUS.register.documents[old].replaced_by == doc.number


def test_find_a_document_as_members_type_it():
    assert CORPUS.register.find("295/2026").number == ND295  # type: ignore[union-attr]
    assert CORPUS.register.find("295/2026/nd-cp").number == ND295  # type: ignore[union-attr]
    assert CORPUS.register.find("17/2023").number == LUAT  # type: ignore[union-attr]
    assert CORPUS.register.by_slug("17-2023-qh15").number == LUAT  # type: ignore[union-attr]
    assert CORPUS.register.find("999/2030") is None


def _copy_law(tmp_path: Path) -> tuple[Path, Path]:
    sources = tmp_path / "sources"
    shutil.copytree(SOURCES_DIR, sources)
    register = tmp_path / "documents.yml"
    shutil.copy(DEFAULT_REGISTER, register)
    return register, sources


def test_a_changed_source_text_is_refused(tmp_path):
    register, sources = _copy_law(tmp_path)
    path = sources / "luat-hop-tac-xa-17-2023-qh15.md"
    path.write_text(path.read_text(encoding="utf-8").replace("06 tháng", "12 tháng", 1))
    with pytest.raises(RegisterError, match="sha256"):
        LegalCorpus.load(register, sources)


def test_a_register_with_a_dangling_replacement_is_refused(tmp_path):
    register, _ = _copy_law(tmp_path)
    text = register.read_text(encoding="utf-8")
    register.write_text(
        text.replace('replaced_by: "295/2026/NĐ-CP"', 'replaced_by: "1/2099/NĐ-CP"')
    )
    with pytest.raises(RegisterError, match="1/2099"):
        load_register(register)


def test_a_replaced_document_needs_its_end_date(tmp_path):
    register, _ = _copy_law(tmp_path)
    text = register.read_text(encoding="utf-8")
    register.write_text(text.replace("    ended: 2026-07-23\n", "", 1))
    with pytest.raises(RegisterError, match="ended"):
        load_register(register)


# -- references ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ref_id",
    [f"{LUAT}:d33:k1:e", f"{LUAT}:d33:k1", f"{LUAT}:d33", "113/2024/NĐ-CP", f"{ND252}:d9:k2:đ.1"],
)
def test_reference_ids_round_trip(ref_id):
    assert parse_reference(ref_id).id == ref_id


def test_reference_labels_and_nesting():
    ref = Reference(doc=LUAT, article=33, clause=1, point="e")
    assert ref.label == "Điều 33 khoản 1 điểm e"
    with pytest.raises(ValueError, match="article"):
        Reference(doc=LUAT, clause=1)
    with pytest.raises(ValueError):
        Reference(doc=LUAT, article=33, clause=1, point="z")


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        (Reference(doc="1/2099/QH99", article=1), "not in the register"),
        (Reference(doc=LUAT, article=116), "no Điều 116"),
        (Reference(doc=LUAT, article=33, clause=9), "no khoản 9"),
        (Reference(doc=LUAT, article=33, clause=1, point="x"), "no điểm x"),
        (Reference(doc=LUAT, article=1, point="a"), "no điểm a"),
    ],
)
def test_unresolved_references_say_what_is_missing(ref, message):
    with pytest.raises(UnresolvedReference, match=message):
        CORPUS.resolve(ref)


def test_a_document_without_text_resolves_without_a_quote():
    assert CORPUS.resolve(Reference(doc="113/2024/NĐ-CP", article=6)) is None


def test_citation_is_generated_and_grouped():
    refs = [
        Reference(doc=LUAT, article=4, clause=7),
        Reference(doc=LUAT, article=4, clause=21),
        Reference(doc=ND295, article=5),
        Reference(doc=LUAT, article=33, clause=1, point="e"),
        Reference(doc="113/2024/NĐ-CP"),
    ]
    assert CORPUS.cite(refs) == (
        "Luật HTX 2023 (17/2023/QH15), Điều 4 khoản 7, khoản 21, Điều 33 khoản 1 điểm e; "
        "Nghị định 295/2026/NĐ-CP, Điều 5; Nghị định 113/2024/NĐ-CP"
    )


def test_quotes_skip_what_an_enclosing_clause_already_shows():
    refs = [
        Reference(doc=LUAT, article=33, clause=1),
        Reference(doc=LUAT, article=33, clause=1, point="e"),
        Reference(doc="113/2024/NĐ-CP"),
        Reference(doc=LUAT, article=74, clause=4),
    ]
    quotes = CORPUS.quotes(refs)
    assert [q.ref.id for q in quotes] == [f"{LUAT}:d33:k1", f"{LUAT}:d74:k4"]
    assert quotes[1].heading.startswith("Luật HTX 2023 (17/2023/QH15), Điều 74.")


def test_clause_search_finds_the_clause_without_diacritics():
    hits = CORPUS.search("chu so huu huong loi cua hop tac xa", 3)
    assert hits and hits[0].ref.id.startswith(f"{ND295}:d66:")
    hits = CORPUS.search("thời hạn góp đủ vốn điều lệ", 5)
    assert f"{LUAT}:d74:k4" in [h.ref.id for h in hits]
    assert CORPUS.search("zzzz qqqq") == []
