"""Ask questions of the news: cited, verifiable answers from a pile of articles.

>>> from rag import Pipeline, Settings
>>> pipeline = Pipeline(Settings())          # nothing is loaded until first use
"""

from __future__ import annotations

from rag.errors import (
    AnswererError,
    BadDate,
    BadQuery,
    BadSetting,
    DiskFull,
    IndexCorrupt,
    IndexMismatch,
    IndexNotBuilt,
    IndexProblem,
    InputError,
    ModelError,
    RagError,
    SourceError,
)
from rag.index.build import ReindexSummary
from rag.models import Answer, Article, Chunk, Citation, Hit, IndexInfo, Problem, Quote, Speaker
from rag.pipeline import Pipeline
from rag.search.retrieve import SearchFilter
from rag.settings import Settings

__version__ = "0.1.0"

__all__ = [
    "Answer",
    "AnswererError",
    "Article",
    "BadDate",
    "BadQuery",
    "BadSetting",
    "Chunk",
    "Citation",
    "DiskFull",
    "Hit",
    "IndexCorrupt",
    "IndexInfo",
    "IndexMismatch",
    "IndexNotBuilt",
    "IndexProblem",
    "InputError",
    "ModelError",
    "Pipeline",
    "Problem",
    "Quote",
    "RagError",
    "ReindexSummary",
    "SearchFilter",
    "Settings",
    "SourceError",
    "Speaker",
]
