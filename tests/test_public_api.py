"""The public surface changes only on purpose."""

from __future__ import annotations

import subprocess
import sys

import rag


def test_public_names_are_exactly_these():
    assert rag.__all__ == [
        "Answer", "AnswererError", "Article", "BadDate", "BadQuery", "BadSetting", "Chunk", "Citation",
        "Hit", "IndexCorrupt", "IndexMismatch", "IndexNotBuilt", "IndexProblem", "InputError",
        "ModelError", "Pipeline", "Problem", "Quote", "RagError", "ReindexSummary", "SearchFilter",
        "Settings", "SourceError",
    ]
    assert rag.__all__ == sorted(rag.__all__)


def test_importing_the_library_loads_no_model_and_no_web_framework():
    code = (
        "import sys, rag, rag.cli; "
        "bad = [m for m in ('fastapi', 'starlette', 'uvicorn', 'click', 'typer', 'pydantic_settings', "
        "'sentence_transformers', 'torch') if m in sys.modules]; print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
