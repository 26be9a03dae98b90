"""The ONNX export cache: a model folder exported once to ONNX (float32 and int8), then reused.

The files live in a cache the project owns (by default ``~/.cache/newsrag/onnx/<model>/``),
never in site-packages. ``export.json`` in each folder vouches for its files: it records a
fingerprint of the source model and the export recipe, and a stale entry is exported again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import secrets
from pathlib import Path
from typing import Any, Sequence

from rag.embed.backends import Backend
from rag.embed.model import DEFAULT_MODEL, canonical_model_name, resolve_model_path
from rag.errors import BadSetting, ModelError
from rag.filelock import FileLock

# Bump when the export or quantisation recipe changes: older cache entries are then re-exported.
_EXPORT_VERSION = 1
_ONNX_FILES = {"onnx": "model.onnx", "onnx-int8": "model-int8.onnx"}


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
    # Two processes that start on a cold cache would otherwise export the same model at once.
    with FileLock(folder / ".lock"):
        if _cache_valid(folder, source, backend):  # another process exported it meanwhile
            return target
        for stale in folder.glob("*.tmp-*"):
            stale.unlink(missing_ok=True)
        meta = read_export_meta(folder)
        if meta.get("source") != _fingerprint(source):
            meta = _export_float32(source, folder)
        if backend == "onnx-int8":
            quantize_int8(folder / _ONNX_FILES["onnx"], target)
            meta["files"] = sorted(set(meta["files"]) | {target.name})
        _write_json(folder / "export.json", meta)
    return target


def read_export_meta(folder: Path) -> dict[str, Any]:
    """What ``export.json`` in a cache folder records (inputs, dimension, files), or ``{}``."""
    try:
        return dict(json.loads((folder / "export.json").read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return {}


def _fingerprint(source: Path) -> dict[str, Any]:
    files = {p.name: [p.stat().st_size, p.stat().st_mtime_ns] for p in sorted(source.iterdir()) if p.is_file()}
    return {"path": str(source.resolve()), "files": files, "export_version": _EXPORT_VERSION}


def _cache_valid(folder: Path, source: Path, backend: str) -> bool:
    meta = read_export_meta(folder)
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


def quantize_int8(float_model: Path, target: Path, op_types: Sequence[str] = ("MatMul",)) -> None:
    """Dynamic int8 quantisation of the weight matrices, one scale per output channel.

    Per-tensor scales lose too much (cosine to float32 0.95 on news chunks); per channel keeps
    0.99. Activations are quantised on the fly, as VNNI's int8 dot products need. ``op_types``
    with "Gather" also stores the token embeddings in int8: the file shrinks from 58 to 23 MB
    (the answer cross-encoder ships so; the embedder's own export leaves them in float32).
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    tmp = _temp_beside(target)
    logging.disable(logging.WARNING)  # a root-logger hint about pre-processing that does not apply
    # That hint is logged with logging.warning(), which gives a root logger without handlers one
    # (basicConfig) even while disabled; the process would then print every library's debug notes
    # (bm25s's during a reindex) to stderr. A handler of our own, removed after, prevents that.
    root = logging.getLogger()
    placeholder = logging.NullHandler()
    root.addHandler(placeholder)
    try:
        quantize_dynamic(str(float_model), str(tmp), op_types_to_quantize=list(op_types), per_channel=True,
                         reduce_range=False, weight_type=QuantType.QInt8)
        os.replace(tmp, target)
    finally:
        root.removeHandler(placeholder)
        logging.disable(logging.NOTSET)
        tmp.unlink(missing_ok=True)


def _temp_beside(path: Path) -> Path:
    """A unique temporary name next to ``path``, renamed onto it once complete."""
    return path.with_name(f"{path.name}.tmp-{os.getpid()}-{secrets.token_hex(3)}")


def _write_json(path: Path, data: dict[str, Any]) -> None:
    tmp = _temp_beside(path)
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    os.replace(tmp, path)
