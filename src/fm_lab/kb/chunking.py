"""Splitting documents into chunks: paragraphs packed up to ``size`` characters with an
``overlap`` carried over, and Markdown split by headings first (the heading path is kept)."""

from __future__ import annotations

import re

_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")
_SENTENCE = re.compile(r"(?<=[.!?])\s+")


def _pieces(text: str, size: int) -> list[str]:
    """Paragraphs, with any paragraph longer than ``size`` cut at sentences, then words."""
    out: list[str] = []
    for para in re.split(r"\n\s*\n", text):
        para = para.strip()
        if not para:
            continue
        if len(para) <= size:
            out.append(para)
            continue
        for sentence in _SENTENCE.split(para):
            while len(sentence) > size:
                cut = sentence.rfind(" ", 0, size)
                cut = cut if cut > 0 else size
                out.append(sentence[:cut].strip())
                sentence = sentence[cut:].strip()
            if sentence:
                out.append(sentence)
    return out


def chunk_text(text: str, *, size: int = 800, overlap: int = 100) -> list[str]:
    """Chunks of at most about ``size`` characters; each starts with the last ``overlap``
    characters (whole words) of the one before.

    >>> chunk_text("one two three. four five six.", size=16, overlap=0)
    ['one two three.', 'four five six.']
    """
    if overlap < 0 or overlap >= size:
        raise ValueError(f"overlap must be between 0 and size ({size}), got {overlap}")
    chunks: list[str] = []
    current = ""
    for piece in _pieces(text, size):
        if current and len(current) + len(piece) + 2 > size:
            chunks.append(current)
            tail = current[-overlap:] if overlap else ""
            tail = tail[tail.find(" ") + 1:] if " " in tail else tail
            current = f"{tail} {piece}".strip() if tail else piece
        else:
            current = f"{current}\n\n{piece}" if current else piece
    if current:
        chunks.append(current)
    return chunks


def markdown_sections(text: str) -> list[tuple[str, str]]:
    """``(heading path, body)`` per section, e.g. ``("Guide > Install", "...")``."""
    sections: list[tuple[str, str]] = []
    path: list[tuple[int, str]] = []
    body: list[str] = []
    fence = False

    def flush() -> None:
        content = "\n".join(body).strip()
        if content:
            sections.append((" > ".join(title for _, title in path), content))
        body.clear()

    for line in text.splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        match = None if fence else _HEADING.match(line)
        if match:
            flush()
            level = len(match[1])
            path = [(lvl, title) for lvl, title in path if lvl < level]
            path.append((level, match[2]))
        else:
            body.append(line)
    flush()
    return sections
