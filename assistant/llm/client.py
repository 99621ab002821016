"""Chat models: the `ChatModel` interface, OpenAI or any compatible server, and a queued fake.

This is the only module that imports `openai`, and only when an `OpenAIChatModel` is created, so
the offline extractive path never pays for it. Every failure leaves here as a `BackendError` whose
message names the server and the HTTP status but never the API key.
"""

from __future__ import annotations

import logging
import math
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol
from urllib.parse import urlparse

from assistant.errors import BackendError, ConfigError

if TYPE_CHECKING:
    from assistant.config import Settings

log = logging.getLogger(__name__)

Message = dict[str, str]


@dataclass(frozen=True)
class Usage:
    """Token counts of one or more model calls."""

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0

    def __add__(self, other: Usage | None) -> Usage:
        if other is None:
            return self
        return Usage(
            self.prompt_tokens + other.prompt_tokens,
            self.completion_tokens + other.completion_tokens,
            self.total_tokens + other.total_tokens,
        )

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


class ChatModel(Protocol):
    """What the answerer needs from a chat model. Failures are raised as `BackendError`."""

    name: str

    def complete(self, messages: list[Message]) -> tuple[str, Usage | None]:
        """The whole reply and its token usage (None when the server does not report it)."""
        ...

    def stream(self, messages: list[Message]) -> Iterator[str | Usage]:
        """The reply as text deltas; a `Usage` may come last."""
        ...

    def judge(self, messages: list[Message]) -> tuple[float, Usage | None] | None:
        """P(the reply is "yes") for a yes/no question, or None when the model cannot say."""
        ...


def llm_configured() -> bool:
    """True when the environment points at a model server (`auto` mode then uses the LLM)."""
    return bool(os.environ.get("OPENAI_API_KEY") or os.environ.get("OPENAI_BASE_URL"))


def redact(text: str, secret: str | None) -> str:
    """`text` without the secret and without anything shaped like an OpenAI key (even masked)."""
    if secret:
        text = text.replace(secret, "[redacted]")
    return re.sub(r"\bsk-[\w*.-]{3,}", "[redacted]", text)


class OpenAIChatModel:
    """Chat completions from OpenAI or any OpenAI-compatible server (Ollama, vLLM, llama.cpp).

    `api_key` defaults to `OPENAI_API_KEY` and `base_url` to `OPENAI_BASE_URL`, as in the openai
    client. With a base URL and no key, a placeholder key is sent: local servers ignore it.
    `timeout` is per attempt in seconds; timeouts, connection errors, 408, 409, 429 and 5xx are
    retried `retries` times with exponential backoff (honouring `Retry-After`) by the client.
    """

    def __init__(
        self,
        model: str = "gpt-4o-mini",
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float = 30.0,
        retries: int = 2,
        temperature: float = 0.0,
        max_tokens: int = 300,
        extra_body: dict[str, Any] | None = None,
    ) -> None:
        base_url = base_url or os.environ.get("OPENAI_BASE_URL") or None
        api_key = api_key or os.environ.get("OPENAI_API_KEY") or None
        if api_key is None and base_url is None:
            raise ConfigError(
                "LLM mode needs OPENAI_API_KEY (OpenAI) or OPENAI_BASE_URL (a compatible server).",
                "Set one of them, or use --mode extractive; see docs/llm.md.",
            )
        try:
            import openai
        except ImportError:
            raise BackendError(
                "The openai package is not installed.", "Install it with: pip install openai"
            ) from None
        self._openai = openai
        self._secret = api_key
        self.name = model
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.timeout = timeout
        self.retries = retries
        self.extra_body = extra_body  # server-specific fields, e.g. llama.cpp's cache_prompt
        parsed = urlparse(base_url or "https://api.openai.com/v1")
        # Only host and port: a URL may carry credentials (user:password@host).
        self.where = parsed.hostname or "the model server"
        if parsed.port:
            self.where += f":{parsed.port}"
        self._client = openai.OpenAI(
            api_key=api_key or "unused", base_url=base_url, timeout=timeout, max_retries=retries
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> OpenAIChatModel:
        return cls(
            settings.llm_model,
            timeout=settings.llm_timeout,
            retries=settings.llm_retries,
            temperature=settings.llm_temperature,
            max_tokens=settings.llm_max_tokens,
        )

    def __repr__(self) -> str:
        return f"OpenAIChatModel(model={self.name!r}, server={self.where!r})"

    def complete(self, messages: list[Message]) -> tuple[str, Usage | None]:
        resp = self._create(messages, max_tokens=self.max_tokens)
        text = (resp.choices[0].message.content or "") if resp.choices else ""
        return text, _usage(resp.usage)

    def judge(self, messages: list[Message]) -> tuple[float, Usage | None] | None:
        """P(yes) from the first token's top logprobs (yes/no in any case); the reply alone if the
        server sends none. A one-token request: about 0.7 s for a short prompt on a 2-core CPU."""
        resp = self._create(messages, max_tokens=1, logprobs=True, top_logprobs=10)
        if not resp.choices:
            return None
        choice = resp.choices[0]
        yes = no = 0.0
        content = getattr(choice.logprobs, "content", None) if choice.logprobs else None
        for top in (content[0].top_logprobs or []) if content else []:
            word = top.token.strip().lower()
            if word == "yes":
                yes += math.exp(top.logprob)
            elif word == "no":
                no += math.exp(top.logprob)
        if yes + no > 0:
            return yes / (yes + no), _usage(resp.usage)
        word = (choice.message.content or "").strip().lower()
        if word.startswith("yes"):
            return 1.0, _usage(resp.usage)
        if word.startswith("no"):
            return 0.0, _usage(resp.usage)
        return None

    def _create(self, messages: list[Message], **options: Any) -> Any:
        """One non-streaming chat completion; any failure, a malformed reply too, is a
        `BackendError`."""
        try:
            resp = self._client.chat.completions.create(
                model=self.name, messages=messages, temperature=self.temperature,
                extra_body=self.extra_body, **options
            )  # type: ignore[arg-type]
        except self._openai.OpenAIError as exc:
            raise self._backend_error(exc) from None
        except ValueError as exc:  # a 200 whose body is not JSON (json.JSONDecodeError)
            raise self._malformed(type(exc).__name__) from None
        # A 200 with another content type (text/html) comes back as a plain string.
        if not isinstance(getattr(resp, "choices", None), list):
            raise self._malformed(type(resp).__name__)
        return resp

    def _malformed(self, what: str) -> BackendError:
        return BackendError(
            f"The model server at {self.where} answered with something that is not a chat "
            f"completion ({what}).",
            "Check that OPENAI_BASE_URL points at an OpenAI-compatible /v1 API.",
        )

    def stream(self, messages: list[Message]) -> Iterator[str | Usage]:
        try:
            chunks = self._client.chat.completions.create(
                model=self.name,
                messages=messages,
                temperature=self.temperature,  # type: ignore[arg-type]
                max_tokens=self.max_tokens,
                stream=True,
                stream_options={"include_usage": True},
                extra_body=self.extra_body,
            )
        except self._openai.OpenAIError as exc:
            raise self._backend_error(exc) from None
        finished = False
        try:
            for chunk in chunks:
                for choice in chunk.choices or ():
                    if choice.delta and choice.delta.content:
                        yield choice.delta.content
                    finished = finished or bool(choice.finish_reason)
                if chunk.usage is not None:
                    yield _usage(chunk.usage) or Usage()
        except self._openai.APIStatusError as exc:  # an error event inside the stream
            raise self._backend_error(exc) from None
        except Exception as exc:  # a transport error mid-stream (the SDK's or httpx's own type)
            raise BackendError(
                f"The reply from the model server at {self.where} broke off "
                f"({type(exc).__name__}).",
                "Try again.",
            ) from None
        finally:
            chunks.close()
        if not finished:  # the stream ended without saying why: the reply is cut short
            raise BackendError(
                f"The reply from the model server at {self.where} broke off.", "Try again."
            )

    def _backend_error(self, exc: Exception) -> BackendError:
        """A `BackendError` with one clear sentence; the SDK's own message may quote the key."""
        o, where, tries = self._openai, self.where, self.retries + 1
        if isinstance(exc, o.APITimeoutError):
            return BackendError(
                f"The model server at {where} did not answer within "
                f"{self.timeout:g} s ({tries} attempt(s)).",
                "Raise ASSISTANT_LLM_TIMEOUT or check the server.",
            )
        if isinstance(exc, o.APIConnectionError):
            return BackendError(
                f"Cannot connect to the model server at {where} ({tries} attempt(s)).",
                "Check OPENAI_BASE_URL and that the server is running.",
            )
        if isinstance(exc, o.APIStatusError):
            code = exc.status_code
            if code in (401, 403):
                return BackendError(
                    f"The model server at {where} rejected the API key (HTTP {code}).",
                    "Check OPENAI_API_KEY.",
                )
            if code == 429:
                return BackendError(
                    f"The model server at {where} is rate-limiting requests "
                    f"(HTTP 429, {tries} attempt(s)).",
                    "Try again later.",
                )
            if code >= 500:
                return BackendError(
                    f"The model server at {where} failed (HTTP {code}, {tries} attempt(s)).",
                    "Try again later.",
                )
            detail = redact(_server_message(exc), self._secret)
            return BackendError(
                f"The model server at {where} refused the request "
                f"(HTTP {code}{': ' + detail if detail else ''}).",
                f"Check ASSISTANT_LLM_MODEL (now {self.name!r}).",
            )
        return BackendError(
            f"The model server at {where} failed ({type(exc).__name__}).",
            "Try again; run with -v for details.",
        )


def _server_message(exc: Any) -> str:
    body = exc.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        message = inner.get("message") if isinstance(inner, dict) else None
        if isinstance(message, str):
            return " ".join(message.split())[:200]
    return ""


def _usage(raw: Any) -> Usage | None:
    if raw is None:
        return None
    return Usage(
        int(raw.prompt_tokens or 0), int(raw.completion_tokens or 0), int(raw.total_tokens or 0)
    )


Reply = str | BaseException | Callable[[list[Message]], str]


class FakeChatModel:
    """A chat model for tests: replies come from a queue, every request is kept in `history`.

    A reply is a string, an exception to raise instead, or a function of the request's messages
    that returns the string: `FakeChatModel(["Hi [1].", BackendError("down")])`.
    """

    name = "fake"

    def __init__(
        self,
        replies: Iterable[Reply] = (),
        judge: Callable[[list[Message]], float | None] | None = None,
        answers: Callable[[list[Message]], float | None] | None = None,
    ) -> None:
        self._queue: deque[Reply] = deque(replies)
        self._judge = judge
        self._answers = answers
        self.history: list[list[Message]] = []
        self.judged: list[list[Message]] = []  # the yes/no support questions asked
        self.checked: list[list[Message]] = []  # the answer checks: "does this answer …?"

    def enqueue(self, *replies: Reply) -> None:
        self._queue.extend(replies)

    def _next(self, messages: list[Message]) -> str:
        self.history.append([dict(m) for m in messages])
        if not self._queue:
            raise BackendError("The fake chat model has no reply queued.", "Call enqueue() first.")
        reply = self._queue.popleft()
        if isinstance(reply, BaseException):
            raise reply
        return reply(messages) if callable(reply) else reply

    @staticmethod
    def _usage(messages: list[Message], text: str) -> Usage:
        prompt = sum(len(m["content"].split()) for m in messages)
        return Usage(prompt, len(text.split()), prompt + len(text.split()))

    def complete(self, messages: list[Message]) -> tuple[str, Usage | None]:
        text = self._next(messages)
        return text, self._usage(messages, text)

    def judge(self, messages: list[Message]) -> tuple[float, Usage | None] | None:
        """`judge(messages)` of the constructor for a support question (it has an "Answer:"
        line), `answers(messages)` for an answer check; None without one: not asked."""
        check = not re.search(r"^Answer: ", messages[-1]["content"], re.M)
        (self.checked if check else self.judged).append([dict(m) for m in messages])
        fn = self._answers if check else self._judge
        p = fn(messages) if fn else None
        return None if p is None else (p, self._usage(messages, "yes"))

    def stream(self, messages: list[Message]) -> Iterator[str | Usage]:
        text = self._next(messages)
        for i in range(0, len(text), 3):  # small pieces, so markers are split across deltas
            yield text[i : i + 3]
        yield self._usage(messages, text)
