"""Heading-aware chunking of Markdown, plain text and HTML runbooks.

A runbook section ("ORA-00060 › Fix") is what an operator wants back, so chunks follow headings:
each chunk keeps its heading path and the document's title, and a long section is cut at
paragraph boundaries into pieces of at most about ``MAX_WORDS`` words, which the 256-token
sentence model can read whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

MAX_WORDS = 160
SUFFIXES = {".md": "markdown", ".markdown": "markdown", ".txt": "text", ".text": "text",
            ".html": "html", ".htm": "html"}


class ParseError(ValueError):
    """The file is not readable text of a supported kind."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Chunk:
    title: str  # the document's short title (its first heading, else the file name)
    heading: str  # heading path within the document, "Title › Section › Subsection"
    text: str

    def embedding_text(self) -> str:
        """What is embedded: the text with where it sits, so "Fix" sections are told apart."""
        where = self.heading if self.heading.startswith(self.title) else " › ".join(p for p in (self.title, self.heading) if p)
        return f"{where}\n{self.text}" if where else self.text


@dataclass(frozen=True, slots=True, kw_only=True)
class _Section:
    path: tuple[str, ...]
    lines: list[str]


def kind_of(path: Path) -> str | None:
    return SUFFIXES.get(path.suffix.lower())


def decode(data: bytes, name: str) -> str:
    if b"\x00" in data[:8192]:
        raise ParseError(f"{name}: binary data, not text")
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ParseError(f"{name}: not UTF-8 text (byte {exc.start})") from None


def chunk_document(text: str, *, kind: str, name: str) -> list[Chunk]:
    """The chunks of one document; ``name`` (the file name) is the fallback title."""
    if kind == "markdown":
        sections = _markdown_sections(text)
    elif kind == "html":
        sections = _html_sections(text)
    elif kind == "text":
        sections = _text_sections(text)
    else:
        raise ParseError(f"{name}: unsupported kind {kind!r}")
    title = next((s.path[0] for s in sections if s.path), "") or Path(name).stem
    chunks: list[Chunk] = []
    for section in sections:
        heading = " › ".join(section.path)
        for piece in _pieces(section.lines):
            chunks.append(Chunk(title=title, heading=heading, text=piece))
    if not chunks:
        raise ParseError(f"{name}: no text found")
    return chunks


def _pieces(lines: list[str]) -> list[str]:
    """Paragraphs joined up to MAX_WORDS words; a longer single paragraph is cut by words."""
    paragraphs, current = [], []
    for line in lines + [""]:
        if line.strip():
            current.append(line.rstrip())
        elif current:
            paragraphs.append("\n".join(current))
            current = []
    pieces: list[str] = []
    buffer: list[str] = []
    count = 0
    for paragraph in paragraphs:
        words = len(paragraph.split())
        if buffer and count + words > MAX_WORDS:
            pieces.append("\n\n".join(buffer))
            buffer, count = [], 0
        if words > MAX_WORDS:
            tokens = paragraph.split()
            for start in range(0, len(tokens), MAX_WORDS):
                pieces.append(" ".join(tokens[start:start + MAX_WORDS]))
            continue
        buffer.append(paragraph)
        count += words
    if buffer:
        pieces.append("\n\n".join(buffer))
    return [p for p in pieces if p.strip()]


_ATX = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def _markdown_sections(text: str) -> list[_Section]:
    sections = [_Section(path=(), lines=[])]
    stack: list[tuple[int, str]] = []
    fenced = False
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            fenced = not fenced
        level, title = 0, ""
        if not fenced:
            match = _ATX.match(line)
            if match:
                level, title = len(match[1]), _inline(match[2])
            elif i + 1 < len(lines) and line.strip() and re.fullmatch(r"\s*(=+|-+)\s*", lines[i + 1]):
                level, title = (1 if "=" in lines[i + 1] else 2), _inline(line.strip())
                i += 1
        if level:
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, title))
            sections.append(_Section(path=tuple(t for _, t in stack), lines=[]))
        else:
            sections[-1].lines.append(line)
        i += 1
    return [s for s in sections if s.path or any(line.strip() for line in s.lines)]


def _inline(text: str) -> str:
    return re.sub(r"[*_`]+", "", text).strip()


def _text_sections(text: str) -> list[_Section]:
    """Plain text: a short first line is the title; underlined lines or lines ending in ':' that
    stand alone are headings."""
    lines = text.splitlines()
    sections = [_Section(path=(), lines=[])]
    title = ""
    first = next((n for n, line in enumerate(lines) if line.strip()), None)
    if first is not None and len(lines[first].split()) <= 12 and (first + 1 >= len(lines) or not lines[first + 1].strip()
                                                                   or re.fullmatch(r"\s*[=-]{3,}\s*", lines[first + 1])):
        title = lines[first].strip()
        sections = [_Section(path=(title,), lines=[])]
        lines = lines[first + 1:]
    i = 0
    while i < len(lines):
        line = lines[i]
        if re.fullmatch(r"\s*[=-]{3,}\s*", line):
            i += 1
            continue
        underlined = i + 1 < len(lines) and line.strip() and re.fullmatch(r"\s*[=-]{3,}\s*", lines[i + 1])
        standalone = (line.strip().endswith(":") and len(line.split()) <= 8 and (i == 0 or not lines[i - 1].strip())
                      and i + 1 < len(lines) and lines[i + 1].strip())
        if underlined or standalone:
            heading = line.strip().rstrip(":")
            sections.append(_Section(path=((title,) if title else ()) + (heading,), lines=[]))
        else:
            sections[-1].lines.append(line)
        i += 1
    return [s for s in sections if any(line.strip() for line in s.lines)] or sections[:1]


class _HtmlSections(HTMLParser):
    _BLOCKS = {"p", "div", "li", "tr", "pre", "br", "table", "ul", "ol", "section", "article", "dd", "dt", "blockquote"}
    _SKIP = {"script", "style", "head", "nav", "footer", "template", "noscript"}

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.sections: list[_Section] = [_Section(path=(), lines=[])]
        self.stack: list[tuple[int, str]] = []
        self.heading: list[str] | None = None
        self.level = 0
        self.skip = 0
        self.line: list[str] = []
        self.title_tag: list[str] | None = None
        self.doc_title = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "title":
            self.title_tag = []
            return
        if tag in self._SKIP:
            self.skip += 1
        elif re.fullmatch(r"h[1-6]", tag):
            self._flush()
            self.heading, self.level = [], int(tag[1])
        elif tag in self._BLOCKS:
            self._flush()
            if tag in {"p", "pre", "table", "ul", "ol"}:
                self.sections[-1].lines.append("")

    def handle_endtag(self, tag: str) -> None:
        if tag == "title" and self.title_tag is not None:
            self.doc_title = " ".join("".join(self.title_tag).split())
            self.title_tag = None
            return
        if tag in self._SKIP:
            self.skip = max(0, self.skip - 1)
        elif re.fullmatch(r"h[1-6]", tag) and self.heading is not None:
            title = " ".join("".join(self.heading).split())
            self.heading = None
            if title:
                while self.stack and self.stack[-1][0] >= self.level:
                    self.stack.pop()
                self.stack.append((self.level, title))
                self.sections.append(_Section(path=tuple(t for _, t in self.stack), lines=[]))
        elif tag in self._BLOCKS:
            self._flush()

    def handle_data(self, data: str) -> None:
        if self.title_tag is not None:
            self.title_tag.append(data)
        elif self.skip:
            return
        elif self.heading is not None:
            self.heading.append(data)
        else:
            self.line.append(data)

    def _flush(self) -> None:
        text = " ".join("".join(self.line).split())
        if text:
            self.sections[-1].lines.append(text)
        self.line = []


def _html_sections(text: str) -> list[_Section]:
    parser = _HtmlSections()
    try:
        parser.feed(text)
        parser.close()
    except Exception as exc:  # html.parser is lenient; anything it still raises is a bad file
        raise ParseError(f"cannot parse HTML: {exc}") from None
    parser._flush()
    sections = [s for s in parser.sections if s.path or any(line.strip() for line in s.lines)]
    if parser.doc_title and not any(s.path for s in sections):
        sections = [_Section(path=(parser.doc_title,) + s.path, lines=s.lines) for s in sections]
    return sections
