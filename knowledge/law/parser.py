"""The parser of official legal texts: a source file into chapters, articles, clauses, points.

The source files (``sources/*.md``) begin with a YAML header between ``---`` lines,
then the text, one paragraph a line, with these markers at the start of a line:

    Chương I                    a chapter; its title inline after ":" or on the next line
    Mục 1 / MỤC 1. TITLE        a section; its title inline or on the next line
    Điều 33. Title              an article
    (Điều 33 Luật số ...)       Pháp điển's source tag under a heading (not law text: skipped)
    1. text  /  1.text          a clause (khoản)
    a) text                     a point (điểm), Vietnamese letters a b c d đ e g h ...
    a.1) text                   a sub-point (NĐ 252/2026)
    Nơi nhận:                   the signature block: the text ends here

A paragraph without a marker belongs to the innermost unit open above it (a
clause's second paragraph, the closing sentence after a list of points). Every
unit keeps its paragraphs verbatim, so what the assistant quotes is the source.

Ids are stable and readable: ``17/2023/QH15:d33``, ``...:d33:k1``, ``...:d33:k1:e``,
``252/2026/NĐ-CP:d28:k1:a.1``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import yaml

__all__ = [
    "POINT_LETTERS",
    "Article",
    "Chapter",
    "Clause",
    "LegalTextError",
    "ParsedText",
    "Point",
    "parse_text",
    "split_header",
]

POINT_LETTERS = "abcdđeghiklmnopqrstuvxy"

_ARTICLE = re.compile(r"^Điều (\d+)\.\s*(.*)$")
_TAG = re.compile(r"^\(Điều \d+ (Luật|Nghị định) số .*\)$")
_CHAPTER = re.compile(r"^Chương ([IVXLC]+)(?::\s*(.*))?$")
_SECTION = re.compile(r"^(?:Mục|MỤC) (\d+)\.?\s*(.*)$")
_CLAUSE = re.compile(r"^(\d+)\.(?!\d)\s*(.*)$")
_POINT = re.compile(rf"^([{POINT_LETTERS}])\)\s+")
_SUBPOINT = re.compile(rf"^([{POINT_LETTERS}])\.(\d+)\)\s+")
_SIGNATURE = "Nơi nhận:"


class LegalTextError(ValueError):
    """A source text cannot be parsed (no header, no articles, a malformed heading)."""


@dataclass(frozen=True, slots=True)
class Point:
    """A point (điểm) or sub-point; ``text`` is verbatim, with its sub-points and paragraphs."""

    id: str
    label: str  # "e", "a.1"
    text: str
    subpoints: tuple[Point, ...] = ()


@dataclass(frozen=True, slots=True)
class Clause:
    """A clause (khoản); ``text`` is verbatim, its points included."""

    id: str
    number: int
    text: str
    points: tuple[Point, ...] = ()

    def point(self, label: str) -> Point | None:
        """Returns the point or sub-point with this label ("e", "a.1"), or None."""
        return _find_point(self.points, label)


def _find_point(points: tuple[Point, ...], label: str) -> Point | None:
    for point in points:
        if point.label == label:
            return point
        for sub in point.subpoints:
            if sub.label == label:
                return sub
    return None


@dataclass(frozen=True, slots=True)
class Article:
    """An article (điều): number, title, where it sits, and its text."""

    id: str
    number: int
    title: str
    chapter: str | None  # "Chương V: TỔ CHỨC QUẢN LÝ ..."
    section: str | None  # "Mục 2. TỔ CHỨC QUẢN TRỊ ĐẦY ĐỦ"
    intro: str  # paragraphs before the first clause (the whole text when there are none)
    clauses: tuple[Clause, ...] = ()
    points: tuple[Point, ...] = ()  # points directly under the article, when it has no clauses

    @property
    def heading(self) -> str:
        """``Điều 33. Chấm dứt tư cách thành viên hợp tác xã`` as in the source."""
        return f"Điều {self.number}. {self.title}".rstrip()

    @property
    def text(self) -> str:
        """The article's body, verbatim (heading and Pháp điển tag excluded)."""
        parts = [self.intro] if self.intro else []
        parts += [c.text for c in self.clauses]
        if not self.clauses:
            parts += [p.text for p in self.points]
        return "\n".join(parts)

    def clause(self, number: int) -> Clause | None:
        """Returns clause ``number``, or None."""
        for clause in self.clauses:
            if clause.number == number:
                return clause
        return None

    def point(self, label: str) -> Point | None:
        """Returns a point directly under the article (no clauses), or None."""
        return _find_point(self.points, label)


@dataclass(frozen=True, slots=True)
class Chapter:
    """A chapter (chương) and the numbers of its articles."""

    number: str
    title: str
    articles: tuple[int, ...]


@dataclass(frozen=True)
class ParsedText:
    """One source file parsed: its header fields, chapters and articles by number."""

    number: str
    header: dict[str, Any]
    chapters: tuple[Chapter, ...]
    articles: dict[int, Article] = field(repr=False)


def split_header(text: str) -> tuple[dict[str, Any], str]:
    """Splits a source file into its YAML header and its body."""
    if not text.startswith("---\n"):
        raise LegalTextError("the text does not begin with a '---' header block")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise LegalTextError("the header block is not closed by '---'")
    try:
        header = yaml.safe_load(text[4:end]) or {}
    except yaml.YAMLError as exc:
        raise LegalTextError(f"the header block is not valid YAML: {exc}") from exc
    if not isinstance(header, dict):
        raise LegalTextError("the header block is not a mapping")
    return header, text[end + 5 :]


# -- building the tree -----------------------------------------------------------------


@dataclass
class _PointDraft:
    label: str
    lines: list[str]
    subpoints: list[_PointDraft] = field(default_factory=list)


@dataclass
class _ClauseDraft:
    number: int
    lines: list[str]
    points: list[_PointDraft] = field(default_factory=list)


@dataclass
class _ArticleDraft:
    number: int
    title: str
    chapter: str | None
    section: str | None
    intro: list[str] = field(default_factory=list)
    clauses: list[_ClauseDraft] = field(default_factory=list)
    points: list[_PointDraft] = field(default_factory=list)
    # where the next unmarked paragraph goes
    tail: list[str] | None = None


def _point(draft: _PointDraft, parent_id: str) -> Point:
    # A sub-point's id hangs off the clause like its point: "...:k1:a.1".
    pid = f"{parent_id}:{draft.label}"
    subs = tuple(_point(s, parent_id) for s in draft.subpoints)
    text = "\n".join([*draft.lines, *(s.text for s in subs)])
    return Point(id=pid, label=draft.label, text=text, subpoints=subs)


def _article(draft: _ArticleDraft, doc: str) -> Article:
    aid = f"{doc}:d{draft.number}"
    clauses = []
    for c in draft.clauses:
        cid = f"{aid}:k{c.number}"
        points = tuple(_point(p, cid) for p in c.points)
        text = "\n".join([*c.lines, *(p.text for p in points)])
        clauses.append(Clause(id=cid, number=c.number, text=text, points=points))
    return Article(
        id=aid,
        number=draft.number,
        title=draft.title,
        chapter=draft.chapter,
        section=draft.section,
        intro="\n".join(draft.intro),
        clauses=tuple(clauses),
        points=tuple(_point(p, aid) for p in draft.points),
    )


def _add_point(article: _ArticleDraft, label: str, line: str) -> list[str]:
    draft = _PointDraft(label, [line])
    (article.clauses[-1].points if article.clauses else article.points).append(draft)
    return draft.lines


def _add_subpoint(article: _ArticleDraft, letter: str, label: str, line: str) -> list[str] | None:
    points = article.clauses[-1].points if article.clauses else article.points
    if not points or points[-1].label != letter:
        return None  # a "b.1)" with no point b open: read it as plain text
    draft = _PointDraft(label, [line])
    points[-1].subpoints.append(draft)
    return draft.lines


def parse_text(text: str, number: str | None = None) -> ParsedText:
    """Parses one source file; ``number`` (the số hiệu) defaults to the header's ``so_hieu``."""
    header, body = split_header(text)
    number = number or str(header.get("so_hieu") or "")
    if not number:
        raise LegalTextError("no document number: pass one or set so_hieu in the header")
    lines = [line.strip() for line in body.splitlines()]
    paragraphs = [line for line in lines if line]

    chapters: list[tuple[str, str, list[int]]] = []
    chapter: str | None = None
    section: str | None = None
    drafts: list[_ArticleDraft] = []
    current: _ArticleDraft | None = None
    expect_title: str | None = None  # "chapter" / "section": the next paragraph is a title

    for para in paragraphs:
        if para.startswith(_SIGNATURE):
            break
        if expect_title is not None and para.upper() == para and not _ARTICLE.match(para):
            if expect_title == "chapter":
                number_, _, _ = chapters[-1]
                chapter = f"Chương {number_}: {para}"
                chapters[-1] = (number_, para, chapters[-1][2])
            else:
                section = f"{section}. {para}"
            expect_title = None
            continue
        expect_title = None
        if m := _CHAPTER.match(para):
            title = (m.group(2) or "").strip()
            chapters.append((m.group(1), title, []))
            chapter = f"Chương {m.group(1)}" + (f": {title}" if title else "")
            section = None
            expect_title = None if title else "chapter"
            continue
        if (m := _SECTION.match(para)) and (m.group(2) == "" or m.group(2).upper() == m.group(2)):
            title = m.group(2).strip()
            section = f"Mục {m.group(1)}" + (f". {title}" if title else "")
            expect_title = None if title else "section"
            continue
        if m := _ARTICLE.match(para):
            current = _ArticleDraft(int(m.group(1)), m.group(2).strip(), chapter, section)
            drafts.append(current)
            if chapters:
                chapters[-1][2].append(current.number)
            current.tail = current.intro
            continue
        if current is None:
            continue  # text before the first article (a preamble): not quoted
        if _TAG.match(para):
            continue
        if m := _CLAUSE.match(para):
            clause = _ClauseDraft(int(m.group(1)), [para])
            current.clauses.append(clause)
            current.tail = clause.lines
            continue
        if m := _SUBPOINT.match(para):
            tail = _add_subpoint(current, m.group(1), f"{m.group(1)}.{m.group(2)}", para)
            if tail is not None:
                current.tail = tail
                continue
        elif m := _POINT.match(para):
            current.tail = _add_point(current, m.group(1), para)
            continue
        assert current.tail is not None
        current.tail.append(para)

    if not drafts:
        raise LegalTextError(f"{number}: no article headings ('Điều N. ...') found")
    articles: dict[int, Article] = {}
    for draft in drafts:
        if draft.number in articles:
            raise LegalTextError(f"{number}: Điều {draft.number} appears twice")
        articles[draft.number] = _article(draft, number)
    return ParsedText(
        number=number,
        header=header,
        chapters=tuple(Chapter(n, t, tuple(a)) for n, t, a in chapters),
        articles=articles,
    )
