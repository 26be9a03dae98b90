"""The one object the shells build: it holds the embedder, chunker, index and answerer.

>>> pipeline = Pipeline(Settings(index_dir=Path("index")))   # loads nothing yet
>>> # pipeline.reindex(["seeds/"]); pipeline.search("What did Blinken say about China?")
"""

from __future__ import annotations

import copy
import logging
import threading
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator, Literal, Sequence, TypeVar, get_args

from rag.answer.attribution import settle
from rag.answer.cross_encoder import SentenceCrossEncoder
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.sentence_rank import SentenceRanker
from rag.embed import (
    DEFAULT_BACKEND,
    Embedder,
    SentenceTransformerEmbedder,
    canonical_model_name,
    embedder_backend,
    interchangeable,
)
from rag.errors import (
    AnswererError,
    BadQuery,
    BadSetting,
    IndexMismatch,
    IndexNotBuilt,
    IndexProblem,
    ModelError,
)
from rag.index.build import EmbedChunks, Indexer, ReindexSummary
from rag.index.loaded import LoadedIndex, load_index
from rag.index.manifest import MANIFEST, read_manifest
from rag.ingest.chunking import Chunker, ChunkingSettings
from rag.ingest.web.sources import add_source, list_sources, remove_source
from rag.ingest.web.state import SourceRecord
from rag.models import Answer, Article, Citation, Hit, IndexInfo, Quote, Speaker
from rag.search.asof import search_as_of
from rag.search.rerank import PassageRanker
from rag.search.retrieve import check_query, make_filter, search
from rag.search.speakers import SpeakerIndex
from rag.search.topic import closeness
from rag.settings import SearchMode, Settings
from rag.text.dates import parse_date
from rag.text.encoding import describe_surrogate, lone_surrogate
from rag.text.quotes import asked_speaker, asked_topic, asks_what_was_said
from rag.text.words import content_words

if TYPE_CHECKING:
    from rag.answer.llm import LLMAnswerer, LLMConfig

log = logging.getLogger(__name__)
_Model = TypeVar("_Model")

AnswererName = Literal["extractive", "llm"]
ANSWERERS: tuple[str, ...] = get_args(AnswererName)


class Pipeline:
    """Reindex, search and answer over one index folder.

    Models load lazily on first use. The loaded index is swapped, not mutated, when a reindex
    (here or in another process) replaces the manifest, so concurrent searches always see one
    complete generation; the replaced one is closed when the last call using it returns.
    """

    def __init__(self, settings: Settings, embedder: Embedder | None = None,
                 llm: LLMConfig | None = None) -> None:
        self.settings = settings
        # The chat model ``ask(..., answerer="llm")`` uses; None: only the extractive answerer.
        self.llm = llm
        self._llm_answerer: LLMAnswerer | None = None
        self._embedder = embedder
        self._chunker: tuple[tuple[int | None, int | None], Chunker] | None = None
        self._index: LoadedIndex | None = None
        self._index_stamp: int | None = None
        # The manifest stamp that last failed to load, and why.
        self._failed: tuple[int, IndexProblem] | None = None
        self._answerer: ExtractiveAnswerer | None = None
        # The learned ranker once loaded; False once it failed to load (fusion from then on).
        self._ranker: PassageRanker | Literal[False] | None = None
        self._sentence_ranker: SentenceRanker | Literal[False] | None = None
        self._cross_encoder: SentenceCrossEncoder | Literal[False] | None = None
        # The same model on other backends (queries, answer sentences), by backend, each with
        # the search embedder it was made for.
        self._companions: dict[str, tuple[Embedder, Embedder]] = {}
        self._lock = threading.Lock()
        self._companion_lock = threading.Lock()
        # The speaker index of one generation (by name, so it never keeps a replaced one open),
        # built on its first use.
        self._speakers: tuple[str, SpeakerIndex] | None = None
        self._speakers_lock = threading.Lock()

    # -- parts ------------------------------------------------------------------------------
    def embedder_for(self, model: str | None, backend: str | None = None) -> Embedder:
        """The embedder for ``model`` on ``backend``; the current one when it already is, or
        when either is None."""
        current = self._embedder
        if (current is None or (model and current.name != canonical_model_name(model))
                or (backend and embedder_backend(current) != backend)):
            self._embedder = SentenceTransformerEmbedder(
                model, backend=backend or DEFAULT_BACKEND, cache_dir=self.settings.cache_dir)  # type: ignore[arg-type]
        return self._embedder

    @property
    def embedder(self) -> Embedder:
        return self.embedder_for(self.settings.model, self.settings.backend)

    @property
    def query_embedder(self) -> Embedder:
        """What embeds search queries. For an index of torch vectors, when no backend is asked
        for, the same model in ONNX Runtime: its vectors are torch's (cosine 1.0), and a single
        query takes 5 ms there against 16 ms in torch (BENCHMARKS.md, "Search latency and ANN recall")."""
        embedder = self.embedder
        if self.settings.backend is None and embedder_backend(embedder) == "torch":
            return self._companion(embedder, "onnx", "queries are embedded")
        return embedder

    @property
    def scorer(self) -> Embedder:
        """What embeds a question and its candidate sentences when an answer is composed:
        the search model on ``settings.scorer_backend``, or the search embedder itself when
        that is None, already that backend, or cannot run it (logged)."""
        wanted = self.settings.scorer_backend
        embedder = self.embedder
        if wanted is None:
            return embedder
        return self._companion(embedder, wanted, "answer sentences are scored")

    def _companion(self, embedder: Embedder, backend: str, purpose: str) -> Embedder:
        """The search embedder's model on ``backend``, made (and warmed) once per search
        embedder; the search embedder itself when it already runs there or cannot (logged)."""
        if embedder_backend(embedder) == backend:
            return embedder
        with self._companion_lock:
            made = self._companions.get(backend)
            if made is None or made[0] is not embedder:
                other: Embedder = SentenceTransformerEmbedder(
                    embedder.name, backend=backend, cache_dir=self.settings.cache_dir)  # type: ignore[arg-type]
                try:
                    other.embed_batch(["warm up"])  # exports the ONNX file on first use ever
                except ModelError as exc:
                    log.warning("%s with the search embedder: %s", purpose, exc)
                    other = embedder
                made = self._companions[backend] = (embedder, other)
            return made[1]

    def chunker(self, settings: Settings | None = None) -> Chunker:
        """The chunker for ``settings``' chunking (default: ``build_settings()``, what a reindex
        would use now)."""
        settings = settings or self.build_settings()
        wanted = (settings.chunk_tokens, settings.overlap_sentences)
        if self._chunker is None or self._chunker[0] != wanted:
            embedder = self.embedder
            # A copy: the chunker tokenizes whole articles during a reindex while searches
            # keep using the embedder's own tokenizer.
            tokenizer = copy.deepcopy(getattr(embedder, "tokenizer"))
            max_tokens = int(getattr(embedder, "max_tokens", 256))
            self._chunker = wanted, Chunker(tokenizer, ChunkingSettings(
                max_tokens=settings.chunk_tokens,  # type: ignore[arg-type]  # for_build fills them
                overlap_sentences=settings.overlap_sentences,  # type: ignore[arg-type]
                model_max_tokens=max_tokens,
            ))
        return self._chunker[1]

    def build_settings(self) -> Settings:
        """The settings a reindex builds with: each build choice left None is the existing
        index's (as with the backend, so that it reuses its vectors), else the default."""
        try:
            recorded = read_manifest(self.settings.index_dir).build_choices()
        except IndexProblem:
            recorded = {}
        return self.settings.for_build(recorded)

    def index(self) -> LoadedIndex:
        """The current generation; reloaded when the manifest on disk has been replaced.

        A replaced generation's files are closed as soon as no call of this pipeline is using
        it, so hold what this returns for one step at most (the verbs lease it, see ``_leased``).
        """
        return self._current(lease=False)

    @contextmanager
    def _leased(self) -> Iterator[LoadedIndex]:
        """The current generation, kept open until the block ends even if a reindex replaces it."""
        index = self._current(lease=True)
        try:
            yield index
        finally:
            index.release()

    def _current(self, lease: bool) -> LoadedIndex:
        path = self.settings.index_dir / MANIFEST
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            read_manifest(self.settings.index_dir)  # raises the helpful IndexNotBuilt
            raise IndexNotBuilt(str(path))  # pragma: no cover - unreachable
        with self._lock:
            if self._index is not None and self._index.damage is not None:
                # Damage found while serving counts as a failed load: every call, /health
                # included, says so until a reindex replaces the generation.
                assert self._index_stamp is not None
                self._failed = (self._index_stamp, self._index.damage)
                self._retire()
            if self._index is None or stamp != self._index_stamp:
                failed = self._failed
                if failed is not None and failed[0] == stamp:
                    # The same broken manifest: say so again without re-reading every file
                    # (a health check may poll this every second).
                    raise failed[1]
                try:
                    self._load_index(stamp)
                except IndexProblem as exc:
                    self._failed = (stamp, exc)
                    self._retire()  # the manifest no longer names it: nothing will use it again
                    raise
                self._failed = None
            assert self._index is not None
            if lease:
                self._index.acquire()
            return self._index

    def _retire(self) -> None:
        """Stop serving the current generation; it closes once its last lease ends."""
        if self._index is not None:
            self._index.retire()
        self._index = None
        self._index_stamp = None

    def _load_index(self, stamp: int) -> None:
        expected = canonical_model_name(self.settings.model) if self.settings.model else None
        index = load_index(self.settings.index_dir, expected_model=expected)
        backend = index.manifest.backend
        wanted = self.settings.backend
        if wanted and not interchangeable(wanted, backend):
            index.close()
            raise IndexMismatch(
                f"index in {self.settings.index_dir} was built with the {backend!r} embedding "
                f"backend, whose vectors do not mix with {wanted!r} ones: rebuild it with 'rag "
                f"reindex --full --backend {wanted} --index {self.settings.index_dir}', or search "
                f"with --backend {backend} (or leave --backend unset)"
            )
        self._retire()
        self._index = index
        self._index_stamp = stamp
        # Search with the model and backend the index was built with unless asked otherwise.
        self.embedder_for(self._index.model, wanted or backend)

    # -- verbs ------------------------------------------------------------------------------
    def reindex(self, sources: Sequence[str | Path] = (), full: bool = False,
                embed: EmbedChunks | None = None) -> ReindexSummary:
        """Build or update the index from ``sources`` (default: the last reindex's sources).

        ``embed``: what embeds the chunks that need it (default: this process;
        ``rag.index.distributed.RayEmbedding`` for a Ray cluster)."""
        from rag.text.quotes import extract_quotes

        embedder = self.embedder_for(self.settings.model, self._build_backend())
        settings = self.build_settings()  # reads the manifest once for both
        indexer = Indexer(settings, embedder, self.chunker(settings), quote_extractor=extract_quotes,
                          embed_chunks=embed)
        return indexer.reindex(sources, full=full)

    def _build_backend(self) -> str:
        """The asked-for backend, else the existing index's (so an incremental reindex reuses
        its vectors), else that of the embedder this pipeline holds (one it was given is used
        as given), else DEFAULT_BACKEND."""
        if self.settings.backend:
            return self.settings.backend
        try:
            return read_manifest(self.settings.index_dir).backend
        except IndexProblem:
            return embedder_backend(self._embedder) if self._embedder is not None else DEFAULT_BACKEND

    def search(self, query: str, k: int = 10, mode: SearchMode = "hybrid",
               since: str | date | None = None, until: str | date | None = None,
               source: str | Sequence[str] | None = None) -> list[Hit]:
        """Retrieval only: the top ``k`` passages, best first."""
        check_text(query, "query")
        flt = make_filter(since, until, source)
        with self._leased() as index:
            return search(index, self.query_embedder, query, k=k, mode=mode, flt=flt)

    def ask(self, question: str, k: int = 8, as_of: str | date | None = None,
            since: str | date | None = None, until: str | date | None = None,
            source: str | Sequence[str] | None = None, mode: SearchMode = "hybrid",
            answerer: AnswererName = "extractive") -> Answer:
        """A short answer whose every sentence is cited, or an honest abstention.

        The question is asked as of ``as_of`` (default today): later articles are never used,
        and phrases such as "this week" or "in March 2023" narrow or boost by date.
        """
        hits, as_of_day = self.retrieve(question, k, as_of, since, until, source, mode)
        return self.compose(question, hits, as_of_day, answerer)

    def compose(self, question: str, hits: Sequence[Hit], as_of: date,
                answerer: AnswererName = "extractive") -> Answer:
        """The second half of ``ask``: the answer from passages ``retrieve`` returned.

        ``answerer="llm"`` has the configured chat model write it, checked sentence by sentence
        (``answer.sentences``); if the model fails, the answer is the extractive one, with a warning.
        """
        check_text(question, "question")
        chosen = self._chosen(answerer)
        quotes, asked, topic = self._read_for(question, hits, topic=chosen is None)
        speaker = asked.speaker if asked else None
        if chosen is not None:
            answer = chosen.answer(question, hits, quotes, as_of=as_of.isoformat(), speaker=speaker)
        else:
            answer = self.answerer().answer(question, hits, quotes, as_of=as_of.isoformat(), speaker=speaker,
                                            topic=topic)
        return asked.settle(answer) if asked else answer

    def compose_stream(self, question: str, hits: Sequence[Hit], as_of: date,
                       answerer: AnswererName = "extractive") -> Iterator[str | Answer]:
        """``compose`` as it happens: the chat model's text deltas (an unverified draft), then
        the final Answer. The extractive answerer yields the Answer alone."""
        check_text(question, "question")
        chosen = self._chosen(answerer)
        quotes, asked, topic = self._read_for(question, hits, topic=chosen is None)
        speaker = asked.speaker if asked else None
        if chosen is not None:
            for item in chosen.stream(question, hits, quotes, as_of=as_of.isoformat(), speaker=speaker):
                yield asked.settle(item) if asked and isinstance(item, Answer) else item
        else:
            answer = self.answerer().answer(question, hits, quotes, as_of=as_of.isoformat(), speaker=speaker,
                                            topic=topic)
            yield asked.settle(answer) if asked else answer

    def _read_for(self, question: str, hits: Sequence[Hit], topic: bool
                  ) -> tuple[list[Quote], _Asked | None, list[float] | None]:
        """What composing an answer reads from the index, from one generation: the passages'
        stored quotes, whom a "What did X say?" question means, and (``topic``) the closeness
        the extractive answerer wants."""
        with self._leased() as index:
            quotes = index.store.quotes_for(sorted({h.article.id for h in hits}))
            asked = self._asked(question, hits, quotes, index)
            return quotes, asked, self._topic(asked, hits, index) if topic else None

    def _asked(self, question: str, hits: Sequence[Hit], quotes: Sequence[Quote],
               index: LoadedIndex) -> _Asked | None:
        """For "What did X say ...?": who X can be, and whether the passages quote them."""
        name = asked_speaker(question)
        if name is None:
            return None
        speakers = self._speaker_index(index)
        candidates = speakers.resolve(name)
        if not candidates and not asks_what_was_said(question):
            # "According to the BBC, how many ...?" names a source, not someone whose words are
            # asked for: when nobody of that name is quoted, it is an ordinary question.
            return None
        return _Asked(name, candidates, speakers.quoted_in(candidates, hits, quotes), speakers,
                      asked_topic(question))

    def _topic(self, asked: _Asked | None, hits: Sequence[Hit], index: LoadedIndex) -> list[float] | None:
        """For "What did X say about Y?" where the passages quote X: how close each of ``hits``
        is to Y (rag.search.topic), which the extractive answerer decides on; else None."""
        if asked is None or not asked.quoted or asked.topic is None:
            return None
        return closeness(index, self.query_embedder, asked.topic, hits)

    def _chosen(self, answerer: str) -> LLMAnswerer | None:
        if answerer not in ANSWERERS:
            raise BadSetting(f"answerer {answerer!r} is not one of {', '.join(ANSWERERS)}")
        return self.llm_answerer() if answerer == "llm" else None

    def retrieve(self, question: str, k: int = 8, as_of: str | date | None = None,
                 since: str | date | None = None, until: str | date | None = None,
                 source: str | Sequence[str] | None = None, mode: SearchMode = "hybrid",
                 ) -> tuple[list[Hit], date]:
        """The passages ``ask`` answers from: as-of cutoff, time frame, then the learned ranker
        or the recency re-rank (``settings.ranker``).

        For "What did X say ...?" only the passages that hold X's quotes are ranked
        (rag.search.speakers), or all of them when X is quoted nowhere the question may look."""
        check_text(question, "question")
        check_query(question, k, mode)
        as_of_day = parse_date(as_of, "as_of") or date.today()
        user = make_filter(since, until, source)
        with self._leased() as index:
            name = asked_speaker(question)
            if name is not None:
                # "What did X say ...?": X's own quotes, ranked the usual way among the passages
                # that hold them; passages at large when X is quoted nowhere the question may look.
                speakers = self._speaker_index(index)
                candidates = speakers.resolve(name)
                if candidates:
                    own = replace(user, rows=speakers.rows(candidates))
                    hits = search_as_of(index, self.query_embedder, question, k, as_of_day, own, mode,
                                        ranker=self.ranker())
                    if hits:
                        return hits, as_of_day
            hits = search_as_of(index, self.query_embedder, question, k, as_of_day, user, mode,
                                ranker=self.ranker())
            return hits, as_of_day

    def speaker_index(self) -> SpeakerIndex:
        """Who is quoted in the loaded generation: built from its stored quotes on first use,
        again only when a reindex replaces the generation (rag.search.speakers has the cost)."""
        with self._leased() as index:
            return self._speaker_index(index)

    def _speaker_index(self, index: LoadedIndex) -> SpeakerIndex:
        with self._speakers_lock:
            generation = index.manifest.generation
            if self._speakers is None or self._speakers[0] != generation:
                self._speakers = (generation, SpeakerIndex.build(index.store.quote_speakers()))
            return self._speakers[1]

    def speakers(self, query: str = "", limit: int = 20) -> list[Speaker]:
        """The quoted people whose name matches ``query`` (the same person, or part of the name,
        case and accents ignored), most quotes first, then by name; everyone for an empty query.

        >>> # pipeline.speakers("blair") -> [Speaker(id='tony-blair', name='Tony Blair', quotes=5)]
        """
        if limit < 1:
            raise BadSetting(f"limit={limit} is below 1: ask for at least one speaker")
        check_text(query, "name")
        return self.speaker_index().find(query, limit)

    def speaker_quotes(self, speaker_id: str, limit: int = 50, offset: int = 0
                       ) -> tuple[Speaker, list[Citation]] | None:
        """A page of what one speaker said, newest article first, each quote cited by its
        offsets (numbered from ``offset + 1``); None for an id ``speakers`` never gave."""
        if limit < 1 or offset < 0:
            raise BadSetting(f"limit={limit}, offset={offset}: the limit must be 1 or more and the "
                             "offset 0 or more")
        with self._leased() as index:
            speakers = self._speaker_index(index)
            speaker = speakers.get(speaker_id)
            if speaker is None:
                return None
            ids = speakers.quote_ids(speaker_id, limit, offset)
            quotes = index.store.quotes_by_ids(ids)
            articles = index.store.articles(sorted({q.article_id for q in quotes.values()}))
        return speaker, [
            Citation.quoting(offset + n, articles[q.article_id], q.start, q.end, speaker=speaker.name)
            for n, q in enumerate((quotes[i] for i in ids), start=1)
        ]

    def ranker(self) -> PassageRanker | None:
        """The learned passage ranker (loaded once), or None when ``settings.ranker`` is "fusion".

        A model folder given in ``settings.ranker_path`` that cannot be used is an error. The one
        that ships falling short (a damaged install) is logged once, and fusion answers instead:
        an answer in the old order beats no answer.
        """
        if self.settings.ranker != "learned":
            return None
        if self._ranker is None:
            self._ranker = self._load_learned(lambda: PassageRanker.load(self.settings.ranker_path),
                                              custom=self.settings.ranker_path is not None,
                                              instead="ranking by fusion instead")
        return self._ranker or None

    def sentence_ranker(self) -> SentenceRanker | None:
        """The learned answer-sentence ranker (loaded once) when ``settings.sentence_ranker`` asks
        for it and ``settings.ranker`` is "learned"; else None. A damaged model is logged once,
        and the hand-weighted score answers."""
        if not self.settings.sentence_ranker or self.settings.ranker != "learned":
            return None
        if self._sentence_ranker is None:
            self._sentence_ranker = self._load_learned(SentenceRanker.load, custom=False,
                                                       instead="scoring answer sentences by hand-set weights")
        return self._sentence_ranker or None

    def cross_encoder(self) -> SentenceCrossEncoder | None:
        """The answer cross-encoder (loaded once) when ``settings.cross_encoder`` asks for it;
        else None. A damaged model is logged once, and the hand-weighted score answers alone."""
        if not self.settings.cross_encoder:
            return None
        if self._cross_encoder is None:
            self._cross_encoder = self._load_learned(SentenceCrossEncoder.load, custom=False,
                                                     instead="scoring answer sentences without it")
        return self._cross_encoder or None

    @staticmethod
    def _load_learned(load: Callable[[], _Model], custom: bool, instead: str) -> _Model | Literal[False]:
        try:
            return load()
        except ModelError as exc:
            if custom:
                raise
            log.warning("%s; %s", exc, instead)
            return False

    def answerer(self) -> ExtractiveAnswerer:
        """The extractive answerer, on the current ``scorer``."""
        scorer = self.scorer
        if self._answerer is None or self._answerer.embedder is not scorer:
            self._answerer = ExtractiveAnswerer(scorer, content_words, ranker=self.sentence_ranker(),
                                                cross_encoder=self.cross_encoder())
        return self._answerer

    def llm_answerer(self) -> LLMAnswerer:
        """The chat-model answerer (raises AnswererError when no LLM is configured)."""
        if self.llm is None:
            raise AnswererError("no LLM is configured for the 'llm' answerer: pass --llm-base-url and "
                                "--llm-model, or set RAG_LLM_BASE_URL and RAG_LLM_MODEL "
                                "(library: Pipeline(..., llm=LLMConfig(base_url, model)))")
        fallback, embedder = self.answerer(), self.embedder
        current = self._llm_answerer
        # Rebuilt, like answerer(), when a reloaded index brought other embedders.
        if current is None or current.fallback is not fallback or current.verifier.embedder is not embedder:
            from rag.answer.llm import LLMAnswerer, LLMClient
            from rag.answer.verify import Verifier

            client = current.client if current is not None else LLMClient(self.llm)
            self._llm_answerer = LLMAnswerer(client, embedder, fallback, Verifier(embedder, content_words))
        return self._llm_answerer

    def article(self, article_id: str) -> Article | None:
        """The stored article, or None."""
        with self._leased() as index:
            return index.store.article(article_id)

    def info(self) -> IndexInfo:
        """What is loaded: counts, model, build time (raises IndexNotBuilt when nothing is)."""
        manifest = self.index().manifest
        return IndexInfo(
            index_dir=str(self.settings.index_dir), articles=manifest.articles, chunks=manifest.chunks,
            model=manifest.model, dimension=manifest.dimension, backend=manifest.backend,
            index_kind=manifest.index_kind, built_at=manifest.built_at, sources=manifest.sources,
        )

    # -- URL sources (rag.ingest.web: the fetch state beside the generations) -----------------
    def sources(self) -> list[SourceRecord]:
        """The URL sources (feeds, pages): last fetch, status, article count, last error."""
        return list_sources(self.settings.index_dir)

    def add_source(self, url: str) -> tuple[SourceRecord, bool]:
        """Follow the feed at ``url`` from the next reindex on; the source and whether it is new."""
        return add_source(self.settings.index_dir, url)

    def remove_source(self, source_id: str) -> SourceRecord | None:
        """Stop following a source (None when unknown); the next reindex drops its articles."""
        return remove_source(self.settings.index_dir, source_id)


def check_text(text: str, what: str) -> None:
    """Raise BadQuery when ``text`` holds a lone surrogate, which no tokenizer, database or
    UTF-8 output takes (see rag.text.encoding).

    >>> check_text("profit \\ud800", "query")
    Traceback (most recent call last):
    rag.errors.BadQuery: the query is not text: character 8 is a lone surrogate (U+D800): send it as UTF-8
    """
    at = lone_surrogate(text) if isinstance(text, str) else None
    if at is not None:
        raise BadQuery(f"the {what} is not text: {describe_surrogate(text, at)}: send it as UTF-8")


@dataclass(frozen=True)
class _Asked:
    """The person a "What did X say ...?" question names, as the speaker index resolves them."""

    name: str  # as the question gives it
    candidates: list[Speaker]  # the quoted people it fits, most quoted first
    quoted: bool  # whether the passages hold a quote by one of them
    speakers: SpeakerIndex
    topic: str | None = None  # what X's words are asked about: "Iraq" in "What did X say about Iraq?"

    @property
    def speaker(self) -> str | None:
        """The full name the answerer credits, when the name fits one person: "Tony Blair" for
        "Blair" keeps Cherie Blair's words out; for several, it picks the best-matching one."""
        return self.candidates[0].name if len(self.candidates) == 1 else None

    def settle(self, answer: Answer) -> Answer:
        return settle(answer, self.name, self.candidates, self.quoted, self.speakers.speaker_of)
