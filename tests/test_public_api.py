"""The public surface changes only on purpose."""

from __future__ import annotations

import subprocess
import sys

import rag


def test_public_names_are_exactly_these():
    assert rag.__all__ == [
        "Answer", "AnswererError", "Article", "BadDate", "BadQuery", "BadSetting", "Chunk", "Citation",
        "DiskFull", "Hit", "IndexCorrupt", "IndexInfo", "IndexMismatch", "IndexNotBuilt", "IndexProblem",
        "InputError", "ModelError", "Pipeline", "Problem", "Quote", "RagError", "ReindexSummary", "SearchFilter",
        "Settings", "SourceError", "Speaker",
    ]
    assert rag.__all__ == sorted(rag.__all__)


def _loaded_after(imports: str) -> list[str]:
    code = (
        f"import sys, pkgutil, importlib; {imports}; "
        "print([m for m in ('api', 'fastapi', 'starlette', 'uvicorn', 'click', 'typer', 'pydantic_settings', "
        "'sentence_transformers', 'torch', 'ray') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return eval(out.stdout)


def test_no_module_of_the_library_imports_a_shell_a_web_framework_or_a_model():
    every_module = ("import rag; [importlib.import_module(m.name) for m in "
                    "pkgutil.walk_packages(rag.__path__, 'rag.')]")
    # httpx, which the LLM client uses, imports click for a command line of its own.
    assert [m for m in _loaded_after(every_module) if m != "click"] == []


def test_the_command_line_starts_without_the_web_stack_or_a_model():
    assert _loaded_after("import api.cli") == ["api"]
