"""The one frozen settings object the library takes. Only the shells read the environment."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal, Mapping, get_args

from rag.embed import BACKENDS, DEFAULT_SCORER_BACKEND, Backend, check_backend
from rag.errors import BadSetting
from rag.ingest.web.config import FetchSettings

IndexType = Literal["auto", "exact", "hnsw", "ivf"]
SearchMode = Literal["hybrid", "dense", "keyword"]
# How hybrid search orders the passages an answer reads: a trained model, or rank fusion alone.
RankerName = Literal["learned", "fusion"]
# What the shells accept for the answer-sentence scorer: a backend, or "search" (the search embedder).
ScorerChoice = Literal[Backend, "search"]
SEARCH_MODES: tuple[str, ...] = get_args(SearchMode)
SCORER_CHOICES: tuple[str, ...] = get_args(ScorerChoice)
INDEX_TYPES: tuple[str, ...] = get_args(IndexType)
RANKERS: tuple[str, ...] = get_args(RankerName)


# What a build chooses for a new index when the caller does not say (Settings.for_build).
BUILD_DEFAULTS: dict[str, int] = {"chunk_tokens": 200, "overlap_sentences": 1, "ann_threshold": 200_000,
                                  "ivf_threshold": 1_000_000, "keyword_shard_rows": 1_000_000}


@dataclass(frozen=True)
class Settings:
    """How to build and search an index.

    >>> Settings(index_dir=Path("index")).for_build({}).chunk_tokens
    200
    """

    index_dir: Path = Path("index")
    # None means "the packaged all-MiniLM-L6-v2" when building, and "whatever the index was
    # built with" when searching, so a search never silently mixes two models.
    model: str | None = None
    # Build choices: chunk_tokens, overlap_sentences, ann_threshold, ivf_threshold and
    # keyword_shard_rows. None means "what the index was built with, as its manifest records it"
    # (BUILD_DEFAULTS for a new index), so a reindex that does not say (a bare `rag reindex`, the
    # API's) repeats the last build and reuses its vectors, where another chunking would embed
    # every chunk again (about 40 hours at 10M chunks on 2 cores).
    chunk_tokens: int | None = None
    overlap_sentences: int | None = None
    index_type: IndexType = "auto"
    # Above this many chunks "auto" builds HNSW: exact search stops meeting the latency
    # budget there (see BENCHMARKS.md).
    ann_threshold: int | None = None
    # From this many chunks "auto" builds ivf (product-quantised codes, re-scored exactly): HNSW
    # holds 1.7 GiB at 1M chunks, ivf about 0.1 GiB at the same recall (BENCHMARKS.md).
    ivf_threshold: int | None = None
    # A keyword (BM25) index of more chunks is built and saved in shards of this many, one at a
    # time: one bm25s build peaks at about 7.9 GB per 1M chunks (BENCHMARKS.md, "BM25 at 1M and 10M
    # chunks"). Each shard has its own IDF (rag.index.keyword).
    keyword_shard_rows: int | None = None
    batch_size: int = 64
    progress: bool = False
    sources: tuple[str, ...] = field(default=())
    # torch, onnx or onnx-int8. None means "the index's own" (DEFAULT_BACKEND for a new index),
    # as with the model; searching with a backend whose vectors differ from the index's is refused.
    backend: Backend | None = None
    # Where the ONNX backends keep their exported models; None: ~/.cache/newsrag.
    cache_dir: Path | None = None
    # What embeds a question and the candidate sentences of its answer. Those vectors are only
    # compared with each other, never with the index's, so this need not match ``backend``.
    # int8 composes the same answers as float32 on RealTime QA in a third of the time
    # (BENCHMARKS.md, "Answers and abstention"). None: the search embedder.
    scorer_backend: Backend | None = DEFAULT_SCORER_BACKEND
    # How a question's passages are ordered (hybrid mode): "learned" re-ranks a deep pool with the
    # trained passage ranker (rag.search.rerank), "fusion" is reciprocal rank fusion plus the
    # recency re-rank. ``ranker_path``: a model folder of your own; None: the one that ships.
    ranker: RankerName = "learned"
    ranker_path: Path | None = None
    # How URL sources (feeds, article pages) are fetched: user agent, timeouts, limits, politeness.
    fetch: FetchSettings = field(default_factory=FetchSettings)
    # Choose answer sentences with the learned sentence ranker (rag.answer.sentence_rank) too.
    # Off: trained on RealTime QA 2024-2025 it picks better sentences there, but worse on 2022
    # (BENCHMARKS.md), so the hand-set weights stay the default.
    sentence_ranker: bool = False
    # Add the answer cross-encoder's (rag.answer.cross_encoder) weighted probability to each answer
    # sentence's hand-weighted score. Off: trained on RealTime QA 2024-2025 it lifts accuracy 0.314 ->
    # 0.386 on that year's held-back months, but on 2022 only 0.474 -> 0.481 with strict accuracy
    # 0.428 -> 0.411, and it takes `rag ask` from 91 to 162 ms (p50) on 2 cores (BENCHMARKS.md).
    cross_encoder: bool = False

    def __post_init__(self) -> None:
        if self.ranker not in RANKERS:
            raise BadSetting(f"ranker {self.ranker!r} is not one of {', '.join(RANKERS)}")
        if self.index_type not in INDEX_TYPES:
            raise BadSetting(f"index type {self.index_type!r} is not one of {', '.join(INDEX_TYPES)}")
        if self.backend is not None:
            check_backend(self.backend)
        if self.scorer_backend is not None:
            check_backend(self.scorer_backend)
        if self.chunk_tokens is not None and not 16 <= self.chunk_tokens <= 512:
            raise BadSetting(f"chunk_tokens={self.chunk_tokens} is outside 16-512: pick e.g. 200")
        if self.overlap_sentences is not None and not 0 <= self.overlap_sentences <= 5:
            raise BadSetting(f"overlap_sentences={self.overlap_sentences} is outside 0-5")
        if self.keyword_shard_rows is not None and self.keyword_shard_rows < 1:
            raise BadSetting(
                f"keyword_shard_rows={self.keyword_shard_rows} must be at least 1: pick e.g. 1000000 "
                "(a BM25 shard of 1M chunks takes about 8 GB to build)"
            )
        if self.batch_size < 1:
            raise BadSetting(f"batch_size={self.batch_size} must be at least 1")

    def for_build(self, recorded: Mapping[str, int | None]) -> Settings:
        """These settings with each build choice left None taken from ``recorded`` (what an
        index's manifest says it was built with), else from ``BUILD_DEFAULTS``.

        >>> Settings().for_build({"chunk_tokens": 64}).chunk_tokens, Settings().for_build({}).chunk_tokens
        (64, 200)
        >>> Settings(chunk_tokens=100).for_build({"chunk_tokens": 64}).chunk_tokens
        100
        """
        chosen = {}
        for name, default in BUILD_DEFAULTS.items():
            given, kept = getattr(self, name), recorded.get(name)
            chosen[name] = given if given is not None else kept if kept is not None else default
        return replace(self, **chosen)


def parse_backend(value: str, name: str) -> Backend:
    """``value`` of the backend option or variable ``name``, or BadSetting naming it.

    >>> parse_backend("onnx", "RAG_BACKEND")
    'onnx'
    """
    if value not in BACKENDS:
        raise BadSetting(f"{name}={value!r} is not one of {', '.join(BACKENDS)}")
    return value  # type: ignore[return-value]


def parse_scorer_backend(value: str, name: str) -> Backend | None:
    """A scorer choice as ``Settings.scorer_backend`` takes it (``search`` becomes None), or
    BadSetting naming the option or variable ``name`` it came from.

    >>> parse_scorer_backend("search", "--scorer-backend") is None
    True
    """
    if value == "search":
        return None
    if value not in BACKENDS:
        raise BadSetting(f"{name}={value!r} is not one of {', '.join(SCORER_CHOICES)}")
    return parse_backend(value, name)
