"""The shells over the ``rag`` library: the HTTP API and the ``rag`` command line.

- ``cli``: ``rag reindex | search | ask | eval | serve``;
- ``app`` (routes), ``schemas`` (request and response models), ``errors`` (error responses),
  ``jobs`` (background reindexes), ``settings`` and ``server`` (uvicorn): the HTTP API,
  ``create_app(ApiSettings(...))``, which ``rag serve`` runs; ``ray_serve``: the same app as a Ray
  Serve application (``rag serve --ray``).

Each shell builds one ``rag.Pipeline`` and calls it. The web stack is imported on first use of
a name below, so the command line starts without FastAPI unless it serves.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from api.app import PipelineDep, create_app, get_pipeline
    from api.server import serve
    from api.settings import ApiSettings

_LAZY = {
    "ApiSettings": "api.settings",
    "PipelineDep": "api.app",
    "create_app": "api.app",
    "get_pipeline": "api.app",
    "serve": "api.server",
}

__all__ = ["ApiSettings", "PipelineDep", "create_app", "get_pipeline", "serve"]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'api' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
