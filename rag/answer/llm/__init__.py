"""The generative answerer: an OpenAI-compatible chat model writes, the verifier decides.

Any server that speaks ``POST /v1/chat/completions`` works: Ollama, vLLM, llama.cpp's server,
llama-cpp-python's server, or a hosted API. The model sees the retrieved passages, numbered and
fenced off as data, and is asked to end each sentence with ``[n]``. What it writes is then
checked sentence by sentence (:mod:`rag.answer.verify`): the model may write a sentence, but only a
quote found in an article can stand behind it.

>>> config = LLMConfig(base_url="http://127.0.0.1:8080", model="smollm2")
>>> LLMClient(config).url
'http://127.0.0.1:8080/v1/chat/completions'

When the server is unreachable, times out or answers something unusable, the answer is the
extractive one, with a ``warnings`` entry saying why.

- ``config``: :class:`LLMConfig`, and :func:`llm_config_from_env` for the shells;
- ``client``: :class:`LLMClient`, the HTTP client, with timeouts and retries;
- ``prompt``: :data:`SYSTEM_PROMPT` and :func:`build_messages`, the passages fenced as data;
- ``answerer``: :class:`LLMAnswerer`, which verifies and cites what the model wrote.
"""

from __future__ import annotations

from rag.answer.llm.answerer import LLMAnswerer
from rag.answer.llm.client import LLMClient
from rag.answer.llm.config import LLMConfig, llm_config_from_env

# SYSTEM_PROMPT is importable from here but stays out of __all__, which tests/test_llm.py pins.
from rag.answer.llm.prompt import SYSTEM_PROMPT as SYSTEM_PROMPT
from rag.answer.llm.prompt import build_messages

__all__ = [
    "LLMAnswerer",
    "LLMClient",
    "LLMConfig",
    "build_messages",
    "llm_config_from_env",
]
