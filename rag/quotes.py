"""Quotes with speakers, extracted at index time (filled in by the answering work)."""

from __future__ import annotations

from .models import Article, Quote


def extract_quotes(article: Article) -> list[Quote]:
    """Statements in ``article`` with the person each is attributed to."""
    return []


def asked_speaker(question: str) -> str | None:  # placeholder, replaced shortly
    return None


def same_person(asked: str, speaker: str | None) -> bool:  # placeholder, replaced shortly
    return False
