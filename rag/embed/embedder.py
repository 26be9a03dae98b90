"""``SentenceTransformerEmbedder``: a sentence-transformers model behind the ``Embedder`` protocol.

It loads lazily, on first use, with the runtime its backend names (``runtimes``), exporting the
model to ONNX first when that backend needs it (``onnx_export``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rag.embed.backends import Backend, check_backend
from rag.embed.model import canonical_model_name, resolve_model_path
from rag.embed.onnx_export import export_onnx
from rag.embed.runtimes import OnnxRuntime, Runtime, TorchRuntime
from rag.errors import BadSetting, ModelError


class SentenceTransformerEmbedder:
    """A sentence-transformers model on CPU, loaded lazily on first use, never at import.

    ``backend`` picks what runs it (``torch``, ``onnx`` or ``onnx-int8``); the ONNX backends
    export the model into ``cache_dir`` (default ``~/.cache/newsrag``) on first use. ``threads``:
    how many threads one batch may use (default: the runtime's, about one per core).

    >>> SentenceTransformerEmbedder(backend="onnx-int8").embed_batch(["Fed raises rates"]).shape  # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, model: str | None = None, device: str = "cpu", backend: Backend = "torch",
                 cache_dir: Path | None = None, threads: int | None = None) -> None:
        self.name = canonical_model_name(model)
        self.backend: Backend = check_backend(backend)
        self._model_arg = model
        self._path = resolve_model_path(model)
        self._device = device
        self._cache_dir = cache_dir
        self._threads = threads
        self._model: Runtime | None = None
        # Hugging Face fast tokenizers fail with "Already borrowed" when two threads encode at
        # once (a live reindex beside searches), so encoding is serialised.
        self._lock = threading.Lock()

    def _load(self) -> Runtime:
        with self._lock:
            return self._load_locked()

    def _load_locked(self) -> Runtime:
        if self._model is None:
            # A name that is not a local folder would be fetched from the hub; this project
            # runs offline, so say so instead of hanging on a download.
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            try:
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # "Loading weights" bars are noise on every start
                if self.backend == "torch":
                    self._model = TorchRuntime(self._path, self._device, self._threads)
                else:
                    onnx_file = export_onnx(self._model_arg, self.backend, self._cache_dir)
                    self._model = OnnxRuntime(self._path, onnx_file, self._threads)
            except (ModelError, BadSetting):
                raise
            except ImportError as exc:
                raise ModelError(
                    f"the {self.backend} embedding backend needs a package that is missing ({exc}): "
                    "pip install onnxruntime onnx, or use --backend torch"
                ) from exc
            except Exception as exc:  # many loader failures (OSError, ValueError, HF and ORT errors)
                with_backend = "" if self.backend == "torch" else f" with the {self.backend} backend"
                raise ModelError(
                    f"cannot load embedding model {self._path!r}{with_backend}: {exc}. "
                    "Pass a local model folder or leave the model unset to use the packaged all-MiniLM-L6-v2"
                ) from exc
        return self._model

    @property
    def cache_dir(self) -> Path | None:
        """Where the ONNX exports are kept (None: ``~/.cache/newsrag``)."""
        return self._cache_dir

    @property
    def threads(self) -> int | None:
        """Threads one batch may use (None: the runtime's default)."""
        return self._threads

    @property
    def dimension(self) -> int:  # type: ignore[override]
        return self._load().dimension

    @property
    def max_tokens(self) -> int:
        """Word pieces the model reads, special tokens included (256 for all-MiniLM-L6-v2)."""
        return self._load().max_seq_length

    @property
    def tokenizer(self) -> Any:
        return self._load().tokenizer

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        """L2-normalised float32 vectors for ``texts``, shape ``(len(texts), dimension)``."""
        model = self._load()
        with self._lock:
            return model.encode(list(texts))

    def count_tokens(self, texts: Sequence[str]) -> list[int]:
        """Word pieces per text, without special tokens (to batch texts by length)."""
        tokenizer = self._load().tokenizer
        counts: list[int] = []
        for lo in range(0, len(texts), 1024):  # short holds of the lock, so searches interleave
            with self._lock:
                ids = tokenizer(list(texts[lo:lo + 1024]), add_special_tokens=False, verbose=False)["input_ids"]
            counts += [len(x) for x in ids]
        return counts
