"""Sentence embeddings: the model, the runtimes that run it, and the helpers built on them.

- ``protocol``: the ``Embedder`` protocol (only ``embed_batch``), with ``embed_query`` and
  ``embed_documents`` built on it;
- ``backends``: the backend names (``torch``, ``onnx``, ``onnx-int8``) and which may share an index;
- ``model``: where the model is loaded from, and the name an index manifest records;
- ``onnx_export``: the ONNX export cache (float32 and int8), exported once and reused;
- ``runtimes``: PyTorch and ONNX Runtime, each running one loaded model;
- ``embedder``: ``SentenceTransformerEmbedder``, which loads a runtime lazily on first use.

A new backend is a name in ``backends.Backend`` and a runtime in ``runtimes``.
"""

from rag.embed.backends import (
    BACKENDS,
    DEFAULT_BACKEND,
    DEFAULT_SCORER_BACKEND,
    Backend,
    check_backend,
    embedder_backend,
    interchangeable,
)
from rag.embed.embedder import SentenceTransformerEmbedder
from rag.embed.model import DEFAULT_MODEL, canonical_model_name, resolve_model_path
from rag.embed.onnx_export import default_cache_dir, export_onnx, onnx_cache_folder
from rag.embed.protocol import Embedder, embed_documents, embed_query, length_order, progress_bar

__all__ = [
    "BACKENDS",
    "Backend",
    "DEFAULT_BACKEND",
    "DEFAULT_MODEL",
    "DEFAULT_SCORER_BACKEND",
    "Embedder",
    "SentenceTransformerEmbedder",
    "canonical_model_name",
    "check_backend",
    "default_cache_dir",
    "embed_documents",
    "embed_query",
    "embedder_backend",
    "export_onnx",
    "interchangeable",
    "length_order",
    "onnx_cache_folder",
    "progress_bar",
    "resolve_model_path",
]
