"""A small OpenAI-compatible chat client over httpx: timeouts, bounded retries, streaming.

>>> from rag.answer.llm.config import LLMConfig
>>> LLMClient(LLMConfig("https://api.openai.com/v1", "gpt-4o-mini")).url
'https://api.openai.com/v1/chat/completions'
"""

from __future__ import annotations

import json
import random
import time
from typing import Any, Callable, Iterator, Sequence

import httpx

from rag.answer.llm.config import LLMConfig
from rag.errors import LLMUnavailable

__all__ = ["LLMClient", "MAX_BACKOFF_S", "Message", "RETRY_STATUS"]

Message = dict[str, str]

# Retried after a pause: the server is busy or briefly broken, not refusing the request.
RETRY_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504})
MAX_BACKOFF_S = 8.0


class LLMClient:
    """A small OpenAI-compatible chat client over httpx, with timeouts and bounded retries.

    Pass ``transport`` (e.g. ``httpx.MockTransport``) to test without a server, and ``sleep``
    to test backoff without waiting.
    """

    def __init__(self, config: LLMConfig, transport: httpx.BaseTransport | None = None,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        self.config = config
        self._sleep = sleep
        headers = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        # Connecting gets a short limit of its own so that a server that is down is noticed fast.
        timeout = httpx.Timeout(config.timeout, connect=min(config.timeout, 5.0))
        self._http = httpx.Client(transport=transport, timeout=timeout, headers=headers)

    @property
    def url(self) -> str:
        base = self.config.base_url.rstrip("/")
        return base + ("/chat/completions" if base.endswith("/v1") else "/v1/chat/completions")

    def close(self) -> None:
        self._http.close()

    def complete(self, messages: Sequence[Message]) -> str:
        """The assistant's whole reply. Raises LLMUnavailable when there is no usable one."""
        response = self._send(messages, stream=False)
        try:
            data = response.json()
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            raise LLMUnavailable(f"{self._where()} returned no chat completion "
                                 f"({_excerpt(response.text)}): check the base URL and model") from None
        if not isinstance(content, str) or not content.strip():
            raise LLMUnavailable(f"{self._where()} returned an empty answer")
        return content

    def stream(self, messages: Sequence[Message]) -> Iterator[str]:
        """The reply as text deltas, as the server sends them (server-sent events)."""
        response = self._send(messages, stream=True)
        got_any = False
        try:
            for line in response.iter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    break
                try:
                    delta = json.loads(payload)["choices"][0].get("delta") or {}
                    delta = delta.get("content") or ""
                    if not isinstance(delta, str):
                        raise TypeError
                except (ValueError, KeyError, IndexError, TypeError, AttributeError):
                    raise LLMUnavailable(f"{self._where()} sent an unreadable stream event "
                                         f"({_excerpt(payload)})") from None
                if delta:
                    got_any = True
                    yield delta
        except httpx.TimeoutException:
            raise LLMUnavailable(f"{self._where()} stopped sending for {self.config.timeout:g} s: "
                                 "raise the LLM timeout or use a faster model") from None
        except httpx.HTTPError as exc:
            raise LLMUnavailable(f"{self._where()} broke off the answer ({exc.__class__.__name__})") from None
        finally:
            response.close()
        if not got_any:
            raise LLMUnavailable(f"{self._where()} returned an empty answer")

    # -- internals ------------------------------------------------------------------------------
    def _payload(self, messages: Sequence[Message], stream: bool) -> dict[str, Any]:
        c = self.config
        return {"model": c.model, "messages": list(messages), "max_tokens": c.max_tokens,
                "temperature": c.temperature, "stream": stream}

    def _send(self, messages: Sequence[Message], stream: bool) -> httpx.Response:
        """The response (headers read, body open when streaming), after at most max_retries retries."""
        body = self._payload(messages, stream)
        attempt = 0
        while True:
            try:
                request = self._http.build_request("POST", self.url, json=body)
                response = self._http.send(request, stream=stream)
            except httpx.TimeoutException:
                raise LLMUnavailable(f"{self._where()} did not answer within {self.config.timeout:g} s: "
                                     "raise the LLM timeout or use a faster model") from None
            except httpx.HTTPError as exc:
                raise LLMUnavailable(f"{self._where()} is unreachable ({exc.__class__.__name__}: {exc}): "
                                     "start the server or fix the base URL") from None
            if response.status_code < 400:
                return response
            text = _read_text(response)
            if response.status_code in RETRY_STATUS and attempt < self.config.max_retries:
                self._sleep(_backoff(attempt, response.headers.get("retry-after")))
                attempt += 1
                continue
            hint = {401: "check the API key", 403: "check the API key",
                    404: "check the base URL and the model name"}.get(response.status_code, "")
            tries = f" after {attempt + 1} tries" if attempt else ""
            raise LLMUnavailable(f"{self._where()} answered HTTP {response.status_code}{tries} "
                                 f"({_excerpt(text)})" + (f": {hint}" if hint else ""))

    def _where(self) -> str:
        return f"the LLM server at {self.url} (model {self.config.model!r})"


def _backoff(attempt: int, retry_after: str | None) -> float:
    """Seconds to wait before retry ``attempt + 1``: Retry-After if sane, else 0.5 * 2^attempt, jittered."""
    if retry_after:
        try:
            return min(max(float(retry_after), 0.0), MAX_BACKOFF_S)
        except ValueError:
            pass  # an HTTP date: fall back to our own schedule
    return min(0.5 * 2 ** attempt, MAX_BACKOFF_S) * random.uniform(0.8, 1.2)


def _read_text(response: httpx.Response) -> str:
    try:
        response.read()
        return response.text
    except httpx.HTTPError:
        return ""
    finally:
        response.close()


def _excerpt(text: str, limit: int = 160) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + "..."
