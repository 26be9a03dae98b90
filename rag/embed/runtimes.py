"""What runs a model: sentence-transformers on PyTorch, or an ONNX export on ONNX Runtime.

Both load their libraries only when built, and both return L2-normalised float32 vectors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Protocol

import numpy as np

from rag.embed.onnx_export import read_export_meta

# Batches this small (queries) are embedded on one thread.
SINGLE_THREAD_TEXTS = 2


class Runtime(Protocol):
    """A loaded model: its shape, its tokenizer, and ``encode``."""

    dimension: int
    max_seq_length: int
    tokenizer: Any

    def encode(self, texts: list[str]) -> np.ndarray: ...


class TorchRuntime:
    """The model as sentence-transformers packages it, on PyTorch."""

    def __init__(self, path: str, device: str, threads: int | None = None) -> None:
        import torch
        from sentence_transformers import SentenceTransformer

        if threads:
            # Process-wide; set only where one process runs one model (a Ray actor).
            torch.set_num_threads(threads)
        self.model = SentenceTransformer(path, device=device)
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(get())
        self.max_seq_length = int(self.model.max_seq_length)
        self.tokenizer = self.model.tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
        """Normalised vectors for ``texts``, shape ``(len(texts), dimension)``."""
        import torch

        # A query or two runs on one thread: on a small shared machine a second intra-op thread
        # only spins, and a query took 0.3-1.1 s with two threads against 21-24 ms with one
        # (BENCHMARKS.md). Callers hold the embedder's lock, so no other encode sees the change.
        threads = torch.get_num_threads()
        if len(texts) <= SINGLE_THREAD_TEXTS:
            torch.set_num_threads(1)
        try:
            return np.asarray(self.model.encode(
                texts, batch_size=max(1, len(texts)), normalize_embeddings=True,
                convert_to_numpy=True, show_progress_bar=False,
            ), dtype=np.float32)
        finally:
            torch.set_num_threads(threads)


class OnnxRuntime:
    """An exported ONNX file (see ``onnx_export``) on ONNX Runtime's CPU provider."""

    def __init__(self, path: str, onnx_file: Path, threads: int | None = None) -> None:
        from transformers import AutoTokenizer

        meta = read_export_meta(onnx_file.parent)
        self.dimension = int(meta["dimension"])
        self.max_seq_length = int(meta["max_seq_length"])
        self.inputs = list(meta["inputs"])
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.session = cpu_session(onnx_file, threads)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Normalised vectors for ``texts``, shape ``(len(texts), dimension)``."""
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length,
                             return_tensors="np")
        out = self.session.run(None, {n: enc[n].astype(np.int64) for n in self.inputs})[0]
        out = np.asarray(out, dtype=np.float32)
        # Renormalised here because int8 arithmetic leaves the norm a little off 1.
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


def cpu_session(onnx_file: Path, threads: int | None = None) -> Any:
    """An ONNX Runtime session for ``onnx_file`` on the CPU, as every model here runs."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # Idle worker threads sleep instead of spinning: on a busy 2-core machine spinning took a
    # quarter of the CPU time for nothing (int8: 48 -> 60 chunks per CPU-second, same wall time).
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    if threads:
        # Left unset, ONNX Runtime takes every core, and actors sharing a node would fight over them.
        options.intra_op_num_threads = threads
    return ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])
