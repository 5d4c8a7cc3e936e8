"""Vietnamese segmentation: words, offsets into the original text, normalised lemmas."""

from __future__ import annotations

from pathlib import Path

import pytest

from nlu.segmenter import segment
from nlu.textnorm import clean_text, has_diacritics, normalize_word, strip_diacritics

HOSTILE = Path(__file__).parents[1] / "data" / "hostile_strings.txt"

# (text, expected token texts, expected (start, end) offsets)
SEGMENT_TABLE = [
    (
        "Hợp tác xã cần bao nhiêu thành viên?",
        ["Hợp tác xã", "cần", "bao nhiêu", "thành viên", "?"],
        [(0, 10), (11, 14), (15, 24), (25, 35), (35, 36)],
    ),
    (
        "htx can bao nhieu thanh vien",
        ["htx", "can", "bao", "nhieu", "thanh vien"],
        [(0, 3), (4, 7), (8, 11), (12, 17), (18, 28)],
    ),
    (
        "Thành viên góp vốn tối đa bao nhiêu %?",
        ["Thành viên", "góp", "vốn", "tối đa", "bao nhiêu", "%", "?"],
        [(0, 10), (11, 14), (15, 18), (19, 25), (26, 35), (36, 37), (37, 38)],
    ),
    (
        "Cho em hỏi 😀 vốn góp",
        ["Cho", "em", "hỏi", "😀", "vốn", "góp"],
        [(0, 3), (4, 6), (7, 10), (11, 12), (13, 16), (17, 20)],
    ),
    (
        "Xem https://dangkykinhdoanh.gov.vn nhé",
        ["Xem", "https://dangkykinhdoanh.gov.vn", "nhé"],
        [(0, 3), (4, 34), (35, 38)],
    ),
    (
        "HTX, tổ hợp tác; liên hiệp HTX!",
        ["HTX", ",", "tổ hợp tác", ";", "liên hiệp", "HTX", "!"],
        [(0, 3), (3, 4), (5, 15), (15, 16), (17, 26), (27, 30), (30, 31)],
    ),
    ("Hợp tác xã", ["Hợp tác xã"], [(0, 10)]),
    ("  hợp   tác   xã  ", ["hợp   tác   xã"], [(2, 16)]),
    ("", [], []),
    ("   ", [], []),
]


@pytest.mark.parametrize(("text", "tokens", "offsets"), SEGMENT_TABLE)
def test_segment_tokens_and_offsets(text: str, tokens: list[str], offsets: list[tuple[int, int]]):
    segments = segment(text)
    assert [s.text for s in segments] == tokens
    assert [(s.start, s.end) for s in segments] == offsets
    assert all(text[s.start : s.end] == s.text for s in segments)


@pytest.mark.parametrize(
    ("text", "lemmas"),
    [
        ("Hợp tác xã", ["hop_tac_xa"]),
        ("htx", ["hop_tac_xa"]),
        ("HTX", ["hop_tac_xa"]),
        ("tv dc vay von ko", ["thanh_vien", "duoc", "vay", "von", "khong"]),
        ("Đăng ký", ["dang_ky"]),
    ],
)
def test_lemmas_are_diacritic_free_and_expanded(text: str, lemmas: list[str]):
    assert [s.lemma for s in segment(text)] == lemmas


def test_accented_and_unaccented_share_lemmas():
    accented = {s.lemma for s in segment("Hợp tác xã cần bao nhiêu thành viên")}
    plain = {s.lemma for s in segment("htx can bao nhieu thanh vien")}
    assert {"hop_tac_xa", "thanh_vien", "can"} <= accented & plain


def test_decomposed_unicode_offsets_cover_combining_marks():
    text = "Ho\u0323\u0302i đo\u0302\u0300ng"  # NFD "Hội đồng"
    segments = segment(text)
    assert "".join(s.text for s in segments).replace(" ", "") == text.replace(" ", "")
    assert segments[-1].end == len(text)
    assert all(text[s.start : s.end] == s.text for s in segments)


def test_plain_segmentation_keeps_original_offsets():
    text = "Hợp tác xã cần bao nhiêu thành viên?"
    segments = segment(text, segment_plain=True)
    assert segments[0].text == "Hợp tác xã"
    assert all(text[s.start : s.end] == s.text for s in segments)


def _hostile_lines() -> list[str]:
    lines = HOSTILE.read_text(encoding="utf-8").splitlines()[1:]
    return [line.replace("\\r", "\r") for line in lines]


@pytest.mark.parametrize("text", _hostile_lines())
def test_hostile_strings_do_not_raise(text: str):
    for plain in (False, True):
        segments = segment(text, segment_plain=plain)
        assert all(text[s.start : s.end] == s.text for s in segments)
        assert all(0 <= s.start < s.end <= len(text) for s in segments)
        starts = [s.start for s in segments]
        assert starts == sorted(starts)


def test_hostile_file_is_not_empty():
    assert len(_hostile_lines()) >= 40


@pytest.mark.parametrize(
    ("text", "plain"),
    [("Hợp tác xã", "hop tac xa"), ("ĐẠI HỘI", "dai hoi"), ("abc", "abc"), ("", "")],
)
def test_strip_diacritics(text: str, plain: str):
    assert strip_diacritics(text) == plain


def test_has_diacritics():
    assert has_diacritics("đ")
    assert has_diacritics("thành viên")
    assert not has_diacritics("thanh vien 123 ?")


def test_clean_text_removes_controls_and_collapses_spaces():
    assert clean_text("  a\x00b\t\tc ") == "a b c"
    assert clean_text("Ho\u0323p") == "Họp"  # NFC
    assert clean_text("x" * 5000, max_chars=10) == "x" * 10


def test_normalize_word_expands_each_syllable():
    assert normalize_word("nhan ko") == "nhan_khong"
    assert normalize_word("nhan ko", expand_abbreviations=False) == "nhan_ko"
