"""Plain-JSON shapes of results, shared by ``rag ... --json`` and the HTTP API."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

from rag.models import Answer, Article, Citation, Hit, Speaker


def hit_to_dict(hit: Hit) -> dict[str, Any]:
    """A passage as ``rag search --json`` prints it."""
    return {
        "rank": hit.rank,
        "score": round(hit.score, 6),
        "article_id": hit.article.id,
        "chunk_id": hit.chunk.id,
        "title": hit.article.title,
        "url": hit.article.url,
        "source": hit.article.source,
        "published_at": hit.article.published_at,
        "text": hit.chunk.text,
        "start": hit.chunk.start,
        "end": hit.chunk.end,
    }


def answer_to_dict(answer: Answer) -> dict[str, Any]:
    """An answer as ``rag ask --json`` prints it."""
    return {
        "question": answer.question,
        "answer": answer.text,
        "abstained": answer.abstained,
        "as_of": answer.as_of,
        "citations": [citation_to_dict(c) for c in answer.citations],
        "passages": [hit_to_dict(h) for h in answer.passages],
        "warnings": list(answer.warnings),
        # Who wrote the text, and (LLM answerer) what verification did to each sentence.
        "answerer": answer.answerer,
        "sentences": [asdict(s) for s in answer.sentences],
        # For "What did X say ...?": the quoted people X may be (see Pipeline.speakers).
        "speakers": [speaker_to_dict(s) for s in answer.speakers],
    }


def citation_to_dict(citation: Citation) -> dict[str, Any]:
    """A citation as answers and a speaker's quote list give it: where the quote is, and its words."""
    return asdict(citation)


def speaker_to_dict(speaker: Speaker) -> dict[str, Any]:
    """A quoted person: ``{"id": "tony-blair", "name": "Tony Blair", "quotes": 3}``."""
    return {"id": speaker.id, "name": speaker.name, "quotes": speaker.quotes}


def article_to_dict(article: Article) -> dict[str, Any]:
    """A stored article with its full text, for showing a cited quote in place."""
    return asdict(article)
