"""Backend names, and which backends' vectors may share one index.

Three backends run the same model:

- ``torch``: sentence-transformers on PyTorch, as packaged.
- ``onnx``: the same float32 weights exported once to ONNX and run by ONNX Runtime. Its vectors
  match torch's (cosine 1.0 to six places), so the two may share an index.
- ``onnx-int8``: that export with its weight matrices dynamically quantised to int8 (per
  channel), which uses the VNNI instructions of recent x86 CPUs. Its vectors differ slightly
  (cosine about 0.99), so an index never mixes them with float32 ones.
"""

from __future__ import annotations

from typing import Literal, get_args

from rag.embed.protocol import Embedder
from rag.errors import BadSetting

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = get_args(Backend)
# What a new index is built with when no backend is asked for: the fastest backend that loses at
# most a point of recall@10. int8 embeds 2.05x as fast as torch with no recall lost (hybrid +0.3
# points, dense -0.2; BENCHMARKS.md, "Embedding backends"). An existing index keeps its own.
DEFAULT_BACKEND: Backend = "onnx-int8"
# What embeds a question and its answer's candidate sentences unless told otherwise: they are
# compared only with each other, so int8 is safe there whatever the index holds (BENCHMARKS.md,
# "Answers and abstention").
DEFAULT_SCORER_BACKEND: Backend = "onnx-int8"
# Backends whose vectors may share one index: measured interchangeable (BENCHMARKS.md,
# "Embedding backends").
_VECTOR_KIND = {"torch": "float32", "onnx": "float32", "onnx-int8": "int8"}


def check_backend(backend: str) -> Backend:
    """``backend`` if it is one of BACKENDS, else BadSetting.

    >>> check_backend("onnx-int8")
    'onnx-int8'
    """
    if backend not in BACKENDS:
        raise BadSetting(f"embedding backend {backend!r} is not one of {', '.join(BACKENDS)}")
    return backend  # type: ignore[return-value]


def interchangeable(a: str, b: str) -> bool:
    """Whether vectors from backends ``a`` and ``b`` may be mixed in one index.

    >>> interchangeable("torch", "onnx"), interchangeable("torch", "onnx-int8")
    (True, False)
    """
    return _VECTOR_KIND.get(a, a) == _VECTOR_KIND.get(b, b)


def embedder_backend(embedder: Embedder) -> str:
    """The backend an embedder runs on; embedders that do not say (test fakes) count as torch."""
    return str(getattr(embedder, "backend", "torch"))
