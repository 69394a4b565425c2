"""The ``kb_query`` node: search a knowledge base (:mod:`fm_lab.kb`) and output the hits."""

from __future__ import annotations

import asyncio
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from fm_lab.kb.base import open as open_kb
from fm_lab.nodes.base import NodeContext, NodeType


class KbQueryNode(NodeType):
    """Searches knowledge base ``kb`` for ``query`` (a template) and outputs a list of
    ``{text, score, source, heading, chunk, doc_id, metadata}``, best first.

    ```yaml
    context:
      type: kb_query
      config:
        kb: handbook
        query: "{{ inputs.question }}"
        k: 4
        filter: {lang: en}
    ```
    """

    type_name = "kb_query"
    idempotent = True
    description = "Search a knowledge base (hybrid vector + full-text)."

    class Config(BaseModel):
        model_config = ConfigDict(extra="forbid")
        kb: str = Field(description="Knowledge base name (fm_lab.kb.create).")
        query: str = Field(description="What to search for (a template).")
        k: int = Field(5, ge=1, le=100)
        filter: dict[str, Any] | str | None = Field(
            None, description="Metadata / column equality, or a SQL filter.")
        mode: Literal["hybrid", "vector", "fts"] = "hybrid"
        store: str | None = Field(None, description="DuckDB file the knowledge base sits "
                                  "beside (default: the default store).")

    async def run(self, ctx: NodeContext, inputs: dict[str, Any]) -> Any:
        config = self.config

        def search() -> list[dict[str, Any]]:
            kb = open_kb(config.kb, store=config.store)
            hits = kb.search(config.query, k=config.k, filter=config.filter, mode=config.mode)
            return [{str(k): v for k, v in row.items()}
                    for row in hits.to_dict(orient="records")]

        return await asyncio.to_thread(search)
