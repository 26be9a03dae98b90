"""How close each retrieved passage is to a question's topic: the "about Y" of "What did X say about Y?".

A passage is compared as the index holds it: its stored vector, which embedded the article's
title with the passage text (rag.ingest.chunking), against the topic embedded as a query. That
costs one query embedding and a dot product per passage, so the answerer can tell "X is quoted in
a story about Y" from "X is quoted, on something else" at no cost worth measuring
(BENCHMARKS.md, "Who said what").

>>> # closeness(index, embedder, "Lib Dems target first-time buyers", hits) -> [0.71, 0.12, ...]
"""

from __future__ import annotations

from typing import Sequence

from rag.embed import Embedder, embed_query
from rag.index.loaded import LoadedIndex
from rag.models import Hit

__all__ = ["closeness"]


def closeness(index: LoadedIndex, embedder: Embedder, topic: str, hits: Sequence[Hit]) -> list[float]:
    """The cosine of ``topic`` and each of ``hits``' stored passage vectors, in ``hits`` order.

    ``embedder`` must be the index's model (the query embedder); a hit whose chunk the index no
    longer holds (a reindex in between) gets 0.0.
    """
    if not hits:
        return []
    rows = index.store.rows_of([h.chunk.id for h in hits])
    vector = embed_query(embedder, topic)
    return [float(index.vectors[rows[h.chunk.id]] @ vector) if h.chunk.id in rows else 0.0 for h in hits]
