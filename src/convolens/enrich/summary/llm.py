"""LLM backends for the optional abstractive summary: a small protocol (`LlmBackend`) a user
can implement, and a client for any OpenAI-compatible chat-completions server (OpenAI,
vLLM, llama.cpp's server, Ollama). Text sent out is scrubbed of e-mail addresses and long
digit runs first (`scrub_contact_details`), a second line of defence after PII redaction.
"""

from __future__ import annotations

import os
import re
import time
from typing import Protocol, runtime_checkable

__all__ = [
    "LlmBackend",
    "LlmError",
    "LlmUnavailableError",
    "OpenAICompatibleBackend",
    "scrub_contact_details",
]

_EMAIL = re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+")
# Seven or more digits, allowing spaces, dots, dashes and brackets between them: phone,
# card and account numbers; shorter numbers (prices, dates, order counts) stay.
_LONG_NUMBER = re.compile(r"\+?\(?\d(?:[\s().-]*\d){6,}")


class LlmError(RuntimeError):
    """The LLM server answered, but not with a usable completion."""


class LlmUnavailableError(LlmError):
    """The LLM server could not be reached (or kept failing) within the retries."""


@runtime_checkable
class LlmBackend(Protocol):
    """What the component needs from an LLM: chat messages in, the reply's text out."""

    model_id: str

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> str: ...


class OpenAICompatibleBackend:
    """POSTs to `{base_url}/chat/completions` (OpenAI, vLLM, llama.cpp, Ollama, ...).

    `base_url` includes the version prefix, e.g. "http://localhost:8000/v1". The API key
    is read from the environment variable named `api_key_env` (never from config files).
    Connection failures, timeouts, 429 and 5xx answers are retried `retries` times.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key_env: str | None = None,
        timeout_s: float = 60.0,
        retries: int = 1,
        retry_delay_s: float = 0.5,
    ) -> None:
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = self.model_id = model
        self.api_key_env = api_key_env
        self.timeout_s, self.retries, self.retry_delay_s = timeout_s, retries, retry_delay_s

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int) -> str:
        import httpx

        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env) if self.api_key_env else None
        if key:
            headers["Authorization"] = f"Bearer {key}"
        payload = {
            "model": self.model,
            "messages": messages,
            "temperature": 0,
            "max_tokens": max_tokens,
        }
        problem = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.retry_delay_s)
            try:
                response = httpx.post(
                    self.url, json=payload, headers=headers, timeout=self.timeout_s
                )
            except httpx.TransportError as exc:
                problem = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code == 429 or response.status_code >= 500:
                problem = f"HTTP {response.status_code}: {response.text[:200]}"
                continue
            if response.status_code >= 400:
                raise LlmError(
                    f"LLM server {self.url} refused the request: HTTP "
                    f"{response.status_code}: {response.text[:300]}"
                )
            try:
                content = response.json()["choices"][0]["message"]["content"]
            except (ValueError, KeyError, IndexError, TypeError) as exc:
                raise LlmError(
                    f"LLM server {self.url} sent no chat completion: {response.text[:300]}"
                ) from exc
            if not isinstance(content, str) or not content.strip():
                raise LlmError(f"LLM server {self.url} sent an empty completion")
            return content.strip()
        raise LlmUnavailableError(
            f"cannot get a completion from the LLM server at {self.url} "
            f"({self.retries + 1} attempts): {problem}. Check `llm_base_url` and that "
            "the server is running."
        )


def scrub_contact_details(text: str) -> str:
    """E-mail addresses and long digit runs (phones, cards) replaced by tags.

    A second line of defence for text leaving the machine: PII redaction normally ran
    first, and its tags pass through unchanged.
    """
    text = _EMAIL.sub("<EMAIL_ADDRESS>", text)
    return _LONG_NUMBER.sub("<PHONE_NUMBER>", text)
