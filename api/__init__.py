"""The HTTP API over the ``rag`` library: ``create_app(ApiSettings(...))``; ``rag serve`` runs it."""

from __future__ import annotations

from .app import PipelineDep, create_app, get_pipeline
from .server import serve
from .settings import ApiSettings

__all__ = ["ApiSettings", "PipelineDep", "create_app", "get_pipeline", "serve"]
