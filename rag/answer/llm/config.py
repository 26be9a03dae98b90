"""Where the chat model is and how to call it: :class:`LLMConfig`, and reading it from ``RAG_LLM_*``."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Literal, Mapping, get_args

from rag.errors import BadSetting

__all__ = ["LLMConfig", "ON_UNSUPPORTED", "OnUnsupported", "llm_config_from_env"]

OnUnsupported = Literal["drop", "flag"]
ON_UNSUPPORTED: tuple[str, ...] = get_args(OnUnsupported)


@dataclass(frozen=True)
class LLMConfig:
    """Where the chat model is and how to call it.

    ``base_url`` may end in ``/v1`` (as OpenAI's does) or not (as a local server's usually
    does). ``on_unsupported`` says what happens to a sentence no passage supports: ``"drop"``
    removes it, ``"flag"`` keeps it with ``"supported": false`` on its citation.

    >>> LLMConfig("http://localhost:11434", "llama3.2", on_unsupported="flag").max_tokens
    256
    """

    base_url: str
    model: str
    api_key: str | None = None
    timeout: float = 60.0
    max_tokens: int = 256
    temperature: float = 0.0
    on_unsupported: OnUnsupported = "drop"
    # Passages shown to the model, best first (small models do better with fewer).
    max_passages: int = 4
    # Retries on 429 and 5xx, with exponential backoff (0.5 s, 1 s, 2 s, ... at most 8 s).
    max_retries: int = 2

    def __post_init__(self) -> None:
        if not re.match(r"https?://[^/\s]+", self.base_url or ""):
            raise BadSetting(f"LLM base URL {self.base_url!r} is not an http(s) URL: use e.g. "
                             "http://127.0.0.1:8080 or https://api.openai.com/v1")
        if not (self.model or "").strip():
            raise BadSetting("LLM model name is empty: pass the name the server knows, e.g. llama3.2")
        if not self.timeout > 0:
            raise BadSetting(f"LLM timeout={self.timeout} must be a positive number of seconds")
        if not 1 <= self.max_tokens <= 32768:
            raise BadSetting(f"LLM max_tokens={self.max_tokens} is outside 1-32768: pick e.g. 256")
        if not 0.0 <= self.temperature <= 2.0:
            raise BadSetting(f"LLM temperature={self.temperature} is outside 0-2: pick e.g. 0")
        if self.on_unsupported not in ON_UNSUPPORTED:
            raise BadSetting(f"on_unsupported={self.on_unsupported!r} is not one of {', '.join(ON_UNSUPPORTED)}")
        if not 1 <= self.max_passages <= 50:
            raise BadSetting(f"LLM max_passages={self.max_passages} is outside 1-50: pick e.g. 4")
        if not 0 <= self.max_retries <= 10:
            raise BadSetting(f"LLM max_retries={self.max_retries} is outside 0-10: pick e.g. 2")


_ENV_FIELDS: dict[str, tuple[str, Callable[[str], Any], str]] = {
    "LLM_API_KEY": ("api_key", str, "a key"),
    "LLM_TIMEOUT": ("timeout", float, "seconds, e.g. 60"),
    "LLM_MAX_TOKENS": ("max_tokens", int, "an integer, e.g. 256"),
    "LLM_TEMPERATURE": ("temperature", float, "a number from 0 to 2, e.g. 0"),
    "LLM_UNSUPPORTED": ("on_unsupported", str, " or ".join(ON_UNSUPPORTED)),
}


def llm_config_from_env(environ: Mapping[str, str], prefix: str = "RAG_",
                        **overrides: Any) -> LLMConfig | None:
    """The LLM settings from ``RAG_LLM_*`` variables (the shells pass ``os.environ``).

    ``overrides`` (from command-line options) win over the environment; ``None`` values are
    ignored. Returns None when neither gives a base URL and a model.

    >>> llm_config_from_env({"RAG_LLM_BASE_URL": "http://127.0.0.1:8080", "RAG_LLM_MODEL": "m"}).model
    'm'
    >>> llm_config_from_env({}) is None
    True
    """
    values: dict[str, Any] = {}
    for name in ("LLM_BASE_URL", "LLM_MODEL"):
        raw = environ.get(prefix + name, "").strip()
        if raw:
            values[name[4:].lower()] = raw
    for name, (field, parse, expected) in _ENV_FIELDS.items():
        raw = environ.get(prefix + name, "").strip()
        if not raw:
            continue
        try:
            values[field] = parse(raw)
        except ValueError:
            raise BadSetting(f"{prefix}{name}={raw!r} is not {expected}") from None
    values.update({key: value for key, value in overrides.items() if value is not None})
    if "base_url" not in values and "model" not in values:
        return None
    missing = [f"{prefix}LLM_{key.upper()}" for key in ("base_url", "model") if key not in values]
    if missing:
        flag = missing[0][len(prefix):].lower().replace("_", "-")
        raise BadSetting(f"{missing[0]} (or --{flag}) is not set: the LLM answerer needs both a "
                         "base URL and a model name")
    try:
        return LLMConfig(**values)
    except BadSetting as exc:
        raise BadSetting(f"{exc} (from {prefix}LLM_* variables or --llm-* options)") from None
