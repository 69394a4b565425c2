"""Knowledge bases: documents (text, Markdown, PDF text, DataFrame rows) chunked with
metadata into LanceDB and searched by vector, full text or both.

>>> import fm_lab.kb
>>> kb = fm_lab.kb.create("handbook")                                  # doctest: +SKIP
>>> kb.add_markdown(open("guide.md").read(), source="guide.md")        # doctest: +SKIP
>>> kb.search("how do I install", k=3)                                 # doctest: +SKIP
"""

from fm_lab.kb.base import (
    KnowledgeBase,
    KnowledgeBaseError,
    create,
    drop,
    names,
    open,
    where_clause,
)
from fm_lab.kb.chunking import chunk_text, markdown_sections

__all__ = [
    "KnowledgeBase",
    "KnowledgeBaseError",
    "chunk_text",
    "create",
    "drop",
    "markdown_sections",
    "names",
    "open",
    "where_clause",
]
