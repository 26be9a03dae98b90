"""SQLite store of articles, chunks and extracted quotes, one file per index generation.

Chunk text is never stored twice: it is always ``articles.text[start:end]``, so a chunk cannot
drift from the article its offsets point into.

A read that finds the file damaged raises IndexCorrupt (and the store remembers it in ``damage``,
so that whoever serves it can stop), never SQLite's own error.
"""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterable, Iterator, Sequence

from rag.errors import IndexCorrupt
from rag.models import Article, Chunk, Quote

_SCHEMA = """
CREATE TABLE IF NOT EXISTS articles (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    text TEXT NOT NULL,
    url TEXT,
    source TEXT,
    published_at TEXT,
    author TEXT,
    origin TEXT NOT NULL,
    content_hash TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS chunks (
    row INTEGER PRIMARY KEY,          -- row in vectors.npy, the FAISS index and the BM25 index
    id TEXT NOT NULL UNIQUE,
    article_id TEXT NOT NULL REFERENCES articles(id),
    position INTEGER NOT NULL,
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    embed_key TEXT NOT NULL           -- hash of the embedded text: reused by incremental reindex
);
CREATE INDEX IF NOT EXISTS chunks_article ON chunks(article_id);
CREATE TABLE IF NOT EXISTS quotes (
    article_id TEXT NOT NULL REFERENCES articles(id),
    start INTEGER NOT NULL,
    end INTEGER NOT NULL,
    speaker TEXT,
    kind TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS quotes_article ON quotes(article_id);
"""

_ARTICLE_COLUMNS = "id, title, text, url, source, published_at, author, origin"


class Store:
    """A thin, typed wrapper over one SQLite file."""

    def __init__(self, path: Path, readonly: bool = False) -> None:
        self.path = path
        self.damage: IndexCorrupt | None = None
        if readonly:
            uri = f"file:{path}?mode=ro"
            self._db = sqlite3.connect(uri, uri=True, check_same_thread=False)
        else:
            self._db = sqlite3.connect(path, check_same_thread=False)
            self._db.executescript(_SCHEMA)

    def close(self) -> None:
        self._db.close()

    # -- writing ---------------------------------------------------------------------------
    def add_article(self, article: Article, content_hash: str) -> None:
        self._db.execute(
            f"INSERT INTO articles ({_ARTICLE_COLUMNS}, content_hash) VALUES (?,?,?,?,?,?,?,?,?)",
            (article.id, article.title, article.text, article.url, article.source,
             article.published_at, article.author, article.origin, content_hash),
        )

    def add_chunks(self, rows: Iterable[tuple[int, Chunk, str]]) -> None:
        self._db.executemany(
            "INSERT INTO chunks (row, id, article_id, position, start, end, embed_key) "
            "VALUES (?,?,?,?,?,?,?)",
            ((row, c.id, c.article_id, c.position, c.start, c.end, key) for row, c, key in rows),
        )

    def add_quotes(self, quotes: Iterable[Quote]) -> None:
        self._db.executemany(
            "INSERT INTO quotes (article_id, start, end, speaker, kind) VALUES (?,?,?,?,?)",
            ((q.article_id, q.start, q.end, q.speaker, q.kind) for q in quotes),
        )

    def commit(self) -> None:
        self._db.commit()

    # -- reading ---------------------------------------------------------------------------
    @contextmanager
    def _reading(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.ProgrammingError:  # misuse (a closed store), not damage
            raise
        except sqlite3.DatabaseError as exc:
            raise self._damaged(str(exc)) from exc

    def _damaged(self, why: str) -> IndexCorrupt:
        index_dir = self.path.parent.parent  # index/gen-.../store.sqlite
        self.damage = IndexCorrupt(f"index in {index_dir} is damaged ({self.path.name}: {why}): rebuild it "
                                   f"with 'rag reindex --full --index {index_dir}'")
        return self.damage

    def check(self) -> None:
        """Read every page (SQLite's quick_check); raise IndexCorrupt if one is damaged."""
        with self._reading():
            found = [row[0] for row in self._db.execute("PRAGMA quick_check(3)")]
        if found != ["ok"]:
            raise self._damaged("; ".join(found))

    def counts(self) -> tuple[int, int]:
        with self._reading():
            (articles,) = self._db.execute("SELECT count(*) FROM articles").fetchone()
            (chunks,) = self._db.execute("SELECT count(*) FROM chunks").fetchone()
        return int(articles), int(chunks)

    def article(self, article_id: str) -> Article | None:
        with self._reading():
            row = self._db.execute(
                f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE id = ?", (article_id,)
            ).fetchone()
        return Article(*row) if row else None

    def _select_in(self, sql: str, keys: Sequence[Any]) -> Iterator[tuple[Any, ...]]:
        """Rows of ``sql``, whose ``{marks}`` stands for ``keys``, asked in batches of 500:
        SQLite caps the number of parameters of one statement."""
        with self._reading():
            for lo in range(0, len(keys), 500):
                part = list(keys[lo:lo + 500])
                yield from self._db.execute(sql.format(marks=",".join("?" * len(part))), part)

    def articles(self, ids: Sequence[str]) -> dict[str, Article]:
        return {row[0]: Article(*row) for row in self._select_in(
            f"SELECT {_ARTICLE_COLUMNS} FROM articles WHERE id IN ({{marks}})", ids)}

    def article_texts(self, numbers: Sequence[int]) -> dict[int, str]:
        """``{n: text}`` of the ``n``th articles added (counted from 0). A build reads its texts
        back through this: its store is only ever added to, so SQLite numbered the rows 1, 2, ...
        in the order they came."""
        return {rowid - 1: text for rowid, text in self._select_in(
            "SELECT rowid, text FROM articles WHERE rowid IN ({marks})", [int(n) + 1 for n in numbers])}

    def texts_in_order(self) -> Iterator[str]:
        """Every article's text, in the order the articles were added (see ``article_texts``)."""
        with self._reading():
            yield from (text for (text,) in self._db.execute("SELECT text FROM articles ORDER BY rowid"))

    def article_hashes(self) -> dict[str, tuple[str, str]]:
        """``{article_id: (content_hash, origin)}`` for the incremental diff."""
        with self._reading():
            return {
                row[0]: (row[1], row[2])
                for row in self._db.execute("SELECT id, content_hash, origin FROM articles")
            }

    def chunks_by_rows(self, rows: Sequence[int]) -> dict[int, tuple[Chunk, str]]:
        """``{row: (chunk, article_id)}``; chunk text is sliced from the article."""
        return {row: (Chunk(cid, aid, pos, start, end, text), aid)
                for row, cid, aid, pos, start, end, text in self._select_in(
                    "SELECT c.row, c.id, c.article_id, c.position, c.start, c.end, "
                    "substr(a.text, c.start + 1, c.end - c.start) "
                    "FROM chunks c JOIN articles a ON a.id = c.article_id WHERE c.row IN ({marks})",
                    [int(r) for r in rows])}

    def rows_of(self, chunk_ids: Sequence[str]) -> dict[str, int]:
        """``{chunk id: row}`` for the chunks stored under ``chunk_ids`` (unknown ids left out)."""
        return dict(self._select_in("SELECT id, row FROM chunks WHERE id IN ({marks})", chunk_ids))

    def chunk_metadata(self) -> Iterator[tuple[int, str | None, str | None]]:
        """``(row, published_at, source)`` for every chunk, in row order, for filter masks."""
        with self._reading():
            yield from self._db.execute(
                "SELECT c.row, a.published_at, a.source FROM chunks c "
                "JOIN articles a ON a.id = c.article_id ORDER BY c.row"
            )

    def embed_keys(self) -> Iterator[tuple[str, int]]:
        """``(embed_key, row)`` for every chunk: where an already-embedded text's vector sits."""
        with self._reading():
            yield from self._db.execute("SELECT embed_key, row FROM chunks")

    def quotes_for(self, article_ids: Sequence[str]) -> list[Quote]:
        return [Quote(aid, start, end, text, speaker, kind)
                for aid, start, end, speaker, kind, text in self._select_in(
                    "SELECT q.article_id, q.start, q.end, q.speaker, q.kind, "
                    "substr(a.text, q.start + 1, q.end - q.start) FROM quotes q "
                    "JOIN articles a ON a.id = q.article_id WHERE q.article_id IN ({marks}) "
                    "ORDER BY q.article_id, q.start", article_ids)]

    def quote_speakers(self) -> Iterator[tuple[int, str, int | None, str | None]]:
        """``(quote_id, speaker, chunk_row, published_at)`` for every quote with a speaker, once
        per chunk that holds its middle (``chunk_row`` is None if none does), for the speaker index.

        One pass over the quotes table; each quote finds its chunks through ``chunks_article``.
        """
        with self._reading():
            yield from self._db.execute(
                "SELECT q.rowid, q.speaker, c.row, a.published_at FROM quotes q "
                "JOIN articles a ON a.id = q.article_id "
                "LEFT JOIN chunks c ON c.article_id = q.article_id "
                "AND c.start <= (q.start + q.end) / 2 AND (q.start + q.end) / 2 < c.end "
                "WHERE q.speaker IS NOT NULL"
            )

    def quotes_by_ids(self, quote_ids: Sequence[int]) -> dict[int, Quote]:
        """``{quote_id: quote}`` for ids from :meth:`quote_speakers`; the text is cut from the article."""
        return {qid: Quote(aid, start, end, text, speaker, kind)
                for qid, aid, start, end, speaker, kind, text in self._select_in(
                    "SELECT q.rowid, q.article_id, q.start, q.end, q.speaker, q.kind, "
                    "substr(a.text, q.start + 1, q.end - q.start) FROM quotes q "
                    "JOIN articles a ON a.id = q.article_id WHERE q.rowid IN ({marks})",
                    [int(i) for i in quote_ids])}
