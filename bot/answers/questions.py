"""Question extraction: a member's letter split into its story and its question parts.

Members write letters: a greeting, the story, one to three questions (often at
the end, often double: "... có được không? Nếu được thì mức ... là bao nhiêu?"),
a closing. The answer service classifies and retrieves on the question parts,
with the rest of the letter as context weighted lower.

A sentence is a question when it ends with "?" or carries a question cue
("cho hỏi", "có được không", "bao nhiêu", "thế nào", ...), matched on the
diacritic-free text so that "co dc k" and "có được không" meet. Greetings,
thanks and bare requests for advice ("Mong luật sư tư vấn giúp") carry no topic
and are never question parts. A short follow-up ("Nếu được thì mức hỗ trợ là
bao nhiêu?") is read together with the sentence before it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from nlu.textnorm import clean_text, plain_words, strip_diacritics

__all__ = ["MAX_QUESTIONS", "QuestionParts", "extract", "is_letter"]

MAX_QUESTIONS: Final = 3
# A message this long, or with a story around its question, is read as a letter.
LETTER_MIN_CHARS: Final = 160

# Sentence ends: . ! ? … ; and line breaks. A "?" closes a sentence even when
# the writer forgets the space after it.
_SENTENCE_END = re.compile(r"(?<=[.!?…;])\s+|(?<=\?)(?=\S)|\n+")

# Question cues, diacritic-free, after abbreviation expansion ("k" -> "khong",
# "dc" -> "duoc", "bn" -> "bao nhieu", "j" -> "gi").
_CUES: Final = (
    "cho hoi",
    "xin hoi",
    "muon hoi",
    "can hoi",
    "nho giai dap",
    "xin giai dap",
    "giai dap giup",
    "duoc khong",
    "co phai",
    "phai khong",
    "hay khong",
    "co can",
    "can gi",
    "gi khong",
    "the nao",
    "ra sao",
    "lam sao",
    "bao nhieu",
    "bao lau",
    "khi nao",
    "luc nao",
    "o dau",
    "la gi",
    "nhung gi",
    "nhu nao",
    "co bi",
    "co mat",
    "co con",
    "co dung",
    "dung khong",
    "sai khong",
    "khong a",
    "chua a",
    "co khong",
    "ai co quyen",
    "ai duoc",
    "ai phai",
    "tai sao",
    "vi sao",
    "buoc nao",
    "nhung nao",
    "loai nao",
    "cach nao",
    "nao ap dung",
    "muc nao",
    "duoc phep",
)
# "cho (tôi|em|chị ...) hỏi", "xin (được) hỏi", "nhờ (luật sư) tư vấn / giải đáp".
_ASKING = re.compile(r" (?:cho|xin|nho|muon) (?:\w+ ){0,2}(?:hoi|tu van|giai dap) ")
# Words that, with nothing else of substance, make a sentence a greeting, thanks
# or a bare request for advice.
_FRAME_WORDS: Final = frozenset(
    (
        # announcing the questions: "em có 3 câu muốn hỏi", "thứ nhất", "sau đây"
        "cau",
        "muon",
        "mot",
        "hai",
        "ba",
        "thu",
        "nhat",
        "sau",
        "vai",
        "tiep",
        "theo",
        "a",
        "admin",
        "ah",
        "ak",
        "anh",
        "ban",
        "bbt",
        "cam",
        "can",
        "chan",
        "chao",
        "chi",
        "cho",
        "chu",
        "chuc",
        "co",
        "cu",
        "da",
        "dang",
        "dap",
        "day",
        "de",
        "den",
        "di",
        "do",
        "duoc",
        "e",
        "em",
        "giai",
        "gio",
        "giup",
        "gui",
        "hay",
        "het",
        "hien",
        "hoi",
        "khoe",
        "kinh",
        "la",
        "lam",
        "ls",
        "luat",
        "minh",
        "moi",
        "mong",
        "nao",
        "nay",
        "nhan",
        "nhe",
        "nhieu",
        "nhu",
        "nhung",
        "o",
        "oi",
        "on",
        "phuc",
        "qua",
        "rat",
        "sao",
        "se",
        "som",
        "suc",
        "thi",
        "thua",
        "toi",
        "tu",
        "va",
        "van",
        "vay",
        "vi",
        "viec",
        "voi",
        "vui",
        "xem",
        "xin",
        "y",
        "ạ",
    )
)
# The closing and greeting sentences that commonly end or open a letter.
_CLOSINGS: Final = ("cam on", "tran trong", "kinh chuc", "chuc quy", "xin chao", "than ai")
# A question that follows up the one before it: "Nếu được thì ...", "Vậy ...", "Còn ...".
_FOLLOW_UP: Final = re.compile(
    r"(?:neu|vay|the thi|con neu|con|va neu|truong hop|khi do|luc do|nhu vay|neu vay)\b"
)
# A question part with fewer content words than this is read with the sentence before.
_SHORT_QUESTION_WORDS: Final = 7


@dataclass(frozen=True, slots=True)
class QuestionParts:
    """A message split into its question parts (at most three) and its story."""

    text: str  # the cleaned message
    questions: tuple[str, ...]  # the parts to answer, in order (the whole text if none found)
    story: str  # everything else: the context, weighted lower
    sentences: int


def _content_words(plain: str) -> list[str]:
    return [w for w in plain.split() if w not in _FRAME_WORDS and not w.isdigit()]


def _is_frame(plain: str) -> bool:
    """A greeting, thanks or bare request for advice: no topic of its own."""
    if any(c in plain for c in _CLOSINGS) and len(_content_words(plain)) <= 3:
        return True
    return len(_content_words(plain)) < 2


# "hỏi" in a name is not asking: "cho Hội đồng quản trị", "xin Hội nghị", "cho hội chợ".
_NOT_ASKING: Final = re.compile(r" hoi (?=(?:dong|nghi|vien|cho|nong dan|phu nu|thao|so) )")


def _is_question(sentence: str, plain: str) -> bool:
    if "?" in sentence:
        return True
    padded = _NOT_ASKING.sub(" hoi_", f" {plain} ")
    if _ASKING.search(padded):
        return True
    return any(f" {cue} " in padded for cue in _CUES) or padded.rstrip().endswith(" khong")


def split_sentences(text: str) -> list[str]:
    """The sentences of ``text`` (cleaned, empty ones dropped)."""
    raw = text.replace("\r\n", "\n").replace("\r", "\n")
    return [s for part in _SENTENCE_END.split(raw) if (s := clean_text(part))]


def is_letter(text: str) -> bool:
    """True when ``text`` is long or tells a story around its question."""
    return len(text) >= LETTER_MIN_CHARS or len(split_sentences(text)) >= 3


def extract(text: str, limit: int = MAX_QUESTIONS) -> QuestionParts:
    """Splits ``text`` into question parts (in order, at most ``limit``) and story.

    Each question part is the question sentence, joined with the sentence before
    it when the question alone is short ("Nếu được thì mức hỗ trợ là bao
    nhiêu?"). When no sentence reads as a question, the whole text is the one part.
    """
    sentences = split_sentences(text)
    cleaned = clean_text(text)
    plains = [plain_words(s) for s in sentences]
    frames = [_is_frame(p) for p in plains]
    asked = [
        i
        for i, (s, p) in enumerate(zip(sentences, plains, strict=True))
        if not frames[i] and _is_question(s, p)
    ]
    if not asked:
        return QuestionParts(cleaned, (cleaned,) if cleaned else (), "", len(sentences))
    groups: list[list[int]] = []
    for i in asked:
        group = [i]
        before = i - 1
        while before >= 0 and frames[before]:
            before -= 1
        follow_up = _FOLLOW_UP.match(plains[i]) is not None
        asked_before = bool(groups) and before == groups[-1][-1]
        short = len(_content_words(plains[i])) < _SHORT_QUESTION_WORDS
        if before >= 0 and (follow_up or (short and not asked_before)):
            group.insert(0, before)
        if groups and group[0] <= groups[-1][-1]:
            # A follow-up of the question before it: one part, asked together.
            groups[-1] = sorted(set(groups[-1]) | set(group))
        else:
            groups.append(group)
    used = {k for group in groups for k in group}
    parts = [" ".join(sentences[k] for k in group) for group in groups]
    questions = _dedupe(parts)[:limit]
    story = " ".join(s for k, s in enumerate(sentences) if k not in used and not frames[k])
    return QuestionParts(cleaned, tuple(questions), story, len(sentences))


def _dedupe(parts: list[str]) -> list[str]:
    seen: set[str] = set()
    unique = []
    for part in parts:
        key = strip_diacritics(part)
        if key not in seen:
            seen.add(key)
            unique.append(part)
    return unique
