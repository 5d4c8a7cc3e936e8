"""A strict check of server-rendered HTML with Python's own parser (no html5lib here).

Every element opened is closed in order (void elements never are), ids are
unique, and nothing the Content-Security-Policy would block is present: no
``<script>``, no ``<style>``, no ``style=`` or ``on...=`` attribute.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from html.parser import HTMLParser

VOID = frozenset(
    {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}
)


@dataclass
class Page:
    """What the check found: problems, and the parts tests look at."""

    problems: list[str] = field(default_factory=list)
    ids: Counter[str] = field(default_factory=Counter)
    links: list[str] = field(default_factory=list)  # every <a href>, in order
    tags: Counter[str] = field(default_factory=Counter)
    canonical: str | None = None
    lang: str | None = None
    viewport: bool = False
    doctype: bool = False
    text: str = ""  # the text of the page (entities decoded), joined by spaces
    svgs: list[str] = field(default_factory=list)  # each inline <svg> element, as written


class _Checker(HTMLParser):
    def __init__(self, source: str) -> None:
        super().__init__(convert_charrefs=True)
        self.source = source
        self.page = Page()
        self.stack: list[str] = []
        self.chunks: list[str] = []
        self._svg_start = 0

    def _attributes(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        page = self.page
        page.tags[f"svg:{tag}" if "svg" in self.stack else tag] += 1
        if tag in ("script", "style"):
            page.problems.append(f"<{tag}> is refused by the CSP")
        values = dict(attrs)
        for name in values:
            if name == "style" or name.startswith("on"):
                page.problems.append(f"<{tag} {name}=...> is refused by the CSP")
        if values.get("id"):
            page.ids[str(values["id"])] += 1
        if tag == "a" and values.get("href") is not None:
            page.links.append(str(values["href"]))
        if tag == "link" and values.get("rel") == "canonical":
            page.canonical = values.get("href")
        if tag == "html":
            page.lang = values.get("lang")
        if tag == "meta" and values.get("name") == "viewport":
            page.viewport = "width=device-width" in (values.get("content") or "")

    def handle_decl(self, decl: str) -> None:
        self.page.doctype = decl.lower() == "doctype html"

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attributes(tag, attrs)
        if tag == "svg":
            start = self.getpos()
            self._svg_start = self._offset(start)
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self._attributes(tag, attrs)
        if tag not in VOID and "svg" not in self.stack:
            self.page.problems.append(f"<{tag}/> self-closed outside SVG")

    def handle_endtag(self, tag: str) -> None:
        if tag in VOID:
            self.page.problems.append(f"</{tag}> closes a void element")
            return
        if not self.stack or self.stack[-1] != tag:
            self.page.problems.append(f"</{tag}> at {self.getpos()} closes {self.stack[-1:]}")
            return
        self.stack.pop()
        if tag == "svg":
            end = self.source.index("</svg>", self._offset(self.getpos())) + len("</svg>")
            self.page.svgs.append(self.source[self._svg_start : end])

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.chunks.append(data.strip())

    def _offset(self, position: tuple[int, int]) -> int:
        line, column = position
        lines = self.source.split("\n")
        return sum(len(x) + 1 for x in lines[: line - 1]) + column


def check_html(source: str) -> Page:
    """Parses ``source``; ``Page.problems`` lists what is wrong (empty: well-formed)."""
    checker = _Checker(source)
    checker.feed(source)
    checker.close()
    page = checker.page
    if checker.stack:
        page.problems.append(f"never closed: {checker.stack}")
    page.problems += [f"id {i!r} used {n} times" for i, n in page.ids.items() if n > 1]
    if not page.doctype:
        page.problems.append("no <!doctype html>")
    if page.tags["title"] != 1 or page.tags["h1"] != 1 or page.tags["main"] != 1:
        page.problems.append("expected one <title>, one <h1> and one <main>")
    page.text = " ".join(checker.chunks)
    return page
