"""Vietnamese text normalisation shared by the NLU tokenizer and the application.

Pure standard library on purpose: the Rasa component (Python 3.10 environment)
and the application (Python 3.11 environment) both import it, so training,
parsing and lexical search see the same normal form.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = [
    "ABBREVIATIONS",
    "base_char_map",
    "clean_text",
    "has_diacritics",
    "normalize_word",
    "plain_words",
    "strip_diacritics",
    "strip_invisible",
]

# Abbreviations members type on phones (keys diacritic-free, as looked up
# after stripping), mapped to their diacritic-free expansion. Only unambiguous
# ones: "dk" could be "đăng ký" or "điều kiện", so it stays as typed and the
# model learns it from examples.
ABBREVIATIONS: dict[str, str] = {
    "htx": "hop tac xa",
    "lhhtx": "lien hiep hop tac xa",
    "thtx": "to hop tac",
    "tv": "thanh vien",
    "tvien": "thanh vien",
    "ko": "khong",
    "k": "khong",
    "kh": "khong",
    "hk": "khong",
    "khg": "khong",
    "dc": "duoc",
    "tthc": "thu tuc hanh chinh",
    "bn": "bao nhieu",
    "bnhieu": "bao nhieu",
    "j": "gi",
    "ns": "noi",
    "vs": "voi",
    "mn": "moi nguoi",
    "ng": "nguoi",
    "sx": "san xuat",
    "kd": "kinh doanh",
    "sxkd": "san xuat kinh doanh",
    "dn": "doanh nghiep",
    "cty": "cong ty",
    "mst": "ma so thue",
    "nd": "nghi dinh",
    "tmdt": "thuong mai dien tu",
    "qd": "quyet dinh",
    "gd": "giam doc",
    "cds": "chuyen doi so",
    "hdqt": "hoi dong quan tri",
    "bks": "ban kiem soat",
    "dhtv": "dai hoi thanh vien",
    "dkkd": "dang ky kinh doanh",
    "gtgt": "gia tri gia tang",
    "tncn": "thu nhap ca nhan",
    "tndn": "thu nhap doanh nghiep",
    "bctc": "bao cao tai chinh",
    "hddt": "hoa don dien tu",
    "nn": "nha nuoc",
    "ubnd": "uy ban nhan dan",
    "ntn": "nhu the nao",
    "trc": "truoc",
    "dt": "dien thoai",
}

_SPACE_RE = re.compile(r"\s+")
# Control characters (except whitespace) and lone surrogates break tokenizers.
_ASCII_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\ud800-\udfff]")
_TONE_MARKS = {"\u0300", "\u0301", "\u0303", "\u0309", "\u0323"}


def strip_diacritics(text: str) -> str:
    """Returns ``text`` lower-cased with every Vietnamese diacritic removed.

    "Hợp tác xã" becomes "hop tac xa"; "đ" becomes "d".
    """
    decomposed = unicodedata.normalize("NFD", text.lower())
    without = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return without.replace("đ", "d")


def has_diacritics(text: str) -> bool:
    """Tells whether ``text`` carries any Vietnamese diacritic (including "đ")."""
    return strip_diacritics(text) != text.lower()


def base_char_map(text: str) -> tuple[str, list[int]]:
    """Maps ``text`` to its diacritic-free lower-case form, keeping positions.

    Returns the base string and, for each of its characters, the index of the
    character in ``text`` it came from. Combining marks (as in NFD input) map
    to nothing, so searching the base string and mapping back gives offsets
    into the original text whatever its Unicode form.
    """
    chars: list[str] = []
    positions: list[int] = []
    for index, ch in enumerate(text):
        base = strip_diacritics(ch)
        for out in base:
            chars.append(out)
            positions.append(index)
    return "".join(chars), positions


def strip_invisible(text: str) -> str:
    """Removes what displays as nothing but changes how text shows or compares.

    Bidirectional controls (an RTL override shows a title reversed), zero-width
    spaces and joiners, the BOM, soft hyphens and every other format character
    (Unicode category Cf), and C0 controls other than tab and newline.
    """
    if text.isascii():
        return _ASCII_CONTROL_RE.sub("", text)
    return "".join(c for c in _ASCII_CONTROL_RE.sub("", text) if unicodedata.category(c) != "Cf")


def clean_text(text: str, max_chars: int = 2000) -> str:
    """Returns ``text`` in NFC with control characters removed and spaces collapsed."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL_RE.sub(" ", text)
    text = _SPACE_RE.sub(" ", text).strip()
    return text[:max_chars]


def normalize_word(word: str, expand_abbreviations: bool = True) -> str:
    """Returns the diacritic-free, lower-case form of one (possibly multi-syllable) word.

    Syllables are joined with "_" so that "hợp tác xã" and "htx" both become
    "hop_tac_xa".
    """
    syllables = strip_diacritics(word).split()
    if expand_abbreviations:
        syllables = [ABBREVIATIONS.get(s, s) for s in syllables]
    return "_".join(" ".join(syllables).split())


_WORD_RE = re.compile(r"\w+")


def plain_words(text: str) -> str:
    """The words of ``text``, diacritic-free, abbreviations expanded, one space apart.

    "Cho em hỏi HTX có đc k" becomes "cho em hoi hop tac xa co duoc khong": the form
    word lists and patterns (question cues, domain terms, 2012 premises) are matched on.
    """
    return " ".join(normalize_word(w).replace("_", " ") for w in _WORD_RE.findall(text))
