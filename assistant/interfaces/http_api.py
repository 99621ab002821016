"""An OpenAI-compatible `POST /v1/chat/completions` over `Assistant`, with the citations added.

The only module that imports fastapi. Replies have the shape of OpenAI chat completions plus
`citations` (verified character spans), `abstained`, `mode`, and `notice` / `unsupported` (the
model's sentences left out) when there are any; with `"stream": true` they are server-sent events
of the verified text, sentence by sentence with its `[n]` markers (an unsupported sentence is
never sent), whose last chunk carries them and the final `answer` text.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict

from assistant.errors import AssistantError, BackendError, BadInputError, ConfigError
from assistant.types import Answer

log = logging.getLogger(__name__)

MODEL_ID = "assistant"


class ChatMessage(BaseModel):
    """One message of the conversation; `content` may be a string or a list of text parts."""

    model_config = ConfigDict(extra="allow")

    role: str
    content: str | list[dict[str, Any]] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(str(p.get("text", "")) for p in self.content if p.get("type") == "text")
        return self.content or ""


class ChatRequest(BaseModel):
    """The fields used; the others (temperature, max_tokens, ...) are accepted and ignored."""

    model_config = ConfigDict(extra="allow")

    model: str | None = None
    messages: list[ChatMessage]
    stream: bool = False


class _Gate:
    """At most `size` requests in flight; the next one is refused (HTTP 429) instead of queued."""

    def __init__(self, size: int) -> None:
        self._slots = threading.BoundedSemaphore(size)

    def enter(self) -> _Slot | None:
        return _Slot(self._slots) if self._slots.acquire(blocking=False) else None


class _Slot:
    """One admitted request; `release` is idempotent (the stream and its cleanup both call it)."""

    def __init__(self, slots: threading.BoundedSemaphore) -> None:
        self._slots = slots
        self._lock = threading.Lock()
        self._held = True

    def release(self) -> None:
        with self._lock:
            if self._held:
                self._held = False
                self._slots.release()


def split_messages(messages: list[ChatMessage]) -> tuple[str, list[dict[str, str]]]:
    """The last user message is the question; the user and assistant turns before it are history."""
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            history = [
                {"role": m.role, "content": m.text()}
                for m in messages[:i]
                if m.role in ("user", "assistant")
            ]
            return messages[i].text(), history
    raise BadInputError(
        "The request has no user message.", 'Send at least one message with "role": "user".'
    )


def check_credentials(header: str | None, auth: str) -> bool:
    """True if `Authorization` carries `user:password` as a Bearer token or as HTTP Basic."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    value = value.strip()
    if scheme.lower() == "basic":
        try:
            value = base64.b64decode(value, validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return False
    elif scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.encode("utf-8"), auth.encode("utf-8"))


def create_app(assistant: Any, *, auth: str = "", queue_size: int = 16) -> FastAPI:
    """A FastAPI app with `/v1/chat/completions` and `/v1/models`; `auth` is `user:password`."""
    app = FastAPI(title="assistant", docs_url=None, redoc_url=None, openapi_url=None)
    gate = _Gate(queue_size)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"Invalid request: {where or 'body'}: {first.get('msg', 'malformed')}.")

    @app.middleware("http")
    async def _auth(request: Request, call_next: Any) -> Any:
        if (
            auth
            and request.url.path.startswith("/v1/")
            and not check_credentials(request.headers.get("authorization"), auth)
        ):
            return _error(
                401,
                "Missing or wrong credentials.",
                "authentication_error",
                headers={"WWW-Authenticate": 'Basic realm="assistant"'},
            )
        return await call_next(request)

    @app.get("/v1/models")
    def models() -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "assistant"}],
        }

    @app.post("/v1/chat/completions", response_model=None)
    def chat_completions(body: ChatRequest) -> JSONResponse | StreamingResponse:
        slot = gate.enter()
        if slot is None:
            return _error(
                429,
                f"The server is busy ({queue_size} requests in flight).",
                "rate_limit_error",
                headers={"Retry-After": "1"},
            )
        streaming = False
        try:
            question, turns = split_messages(body.messages)
            history = turns or None
            if not body.stream:
                return JSONResponse(completion(assistant.ask(question, history=history)))
            items = _items(assistant, question, history)
            first = next(items)  # a bad question fails here, as a plain HTTP error
            cleanup = BackgroundTasks()
            cleanup.add_task(slot.release)  # in case the stream is never iterated
            streaming = True
            return StreamingResponse(
                _sse(first, items, slot),
                media_type="text/event-stream",
                headers={"Cache-Control": "no-cache"},
                background=cleanup,
            )
        except AssistantError as exc:
            return _assistant_error(exc)
        except Exception:
            log.exception("The chat completion failed.")
            return _error(500, "The assistant failed; see the server log.", "server_error")
        finally:
            if not streaming:
                slot.release()

    return app


def _items(
    assistant: Any, question: str, history: list[dict[str, str]] | None
) -> Iterator[str | Answer]:
    """Text deltas, then the final `Answer` (one delta when the assistant cannot stream)."""
    stream = getattr(assistant, "stream", None)
    if stream is not None:
        yield from stream(question, history=history)
        return
    answer = assistant.ask(question, history=history)
    yield answer.text
    yield answer


def completion(answer: Answer) -> dict[str, Any]:
    """A non-streaming chat completion body."""
    return {
        "id": _new_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": answer.text},
                "finish_reason": "stop",
            }
        ],
        "usage": _usage(answer),
        **_extras(answer),
    }


def _extras(answer: Answer) -> dict[str, Any]:
    out = {
        "citations": [c.to_dict() for c in answer.citations],
        "abstained": answer.abstained,
        "mode": answer.mode,
    }
    if answer.notice:
        out["notice"] = answer.notice
    if answer.unsupported:
        out["unsupported"] = list(answer.unsupported)
    return out


def _usage(answer: Answer) -> dict[str, int]:
    return (
        dict(answer.usage)
        if answer.usage
        else {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    )


def _sse(first: str | Answer, items: Iterator[str | Answer], slot: _Slot) -> Iterator[str]:
    cid, created = _new_id(), int(time.time())

    def chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
        body = {
            "id": cid,
            "object": "chat.completion.chunk",
            "created": created,
            "model": MODEL_ID,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            **extra,
        }
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n"

    try:
        yield chunk({"role": "assistant", "content": ""})
        item: str | Answer = first
        answer: Answer | None = None
        while True:
            if isinstance(item, Answer):
                answer = item
                break
            if item:
                yield chunk({"content": item})
            try:
                item = next(items)
            except StopIteration:
                break
        if answer is None:
            raise BackendError("The answer stream ended without a final answer.")
        yield chunk({}, "stop", usage=_usage(answer), answer=answer.text, **_extras(answer))
    except AssistantError as exc:
        yield f"data: {json.dumps({'error': _error_body(exc.message, _kind(exc))})}\n\n"
    except Exception:
        log.exception("The streamed chat completion failed.")
        body = _error_body("The assistant failed; see the server log.", "server_error")
        yield f"data: {json.dumps({'error': body})}\n\n"
    finally:
        slot.release()
    yield "data: [DONE]\n\n"


def _new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def _kind(exc: AssistantError) -> str:
    bad_input = isinstance(exc, BadInputError | ConfigError)
    return "invalid_request_error" if bad_input else "server_error"


def _error_body(message: str, kind: str) -> dict[str, Any]:
    return {"message": message, "type": kind, "param": None, "code": None}


def _error(
    status: int,
    message: str,
    kind: str = "invalid_request_error",
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse({"error": _error_body(message, kind)}, status_code=status, headers=headers)


def _assistant_error(exc: AssistantError) -> JSONResponse:
    status = 503  # index missing, seeds folder or model problems: the server is not ready
    if isinstance(exc, BadInputError):
        status = 400
    elif isinstance(exc, BackendError):
        status = 502
    return _error(status, str(exc), _kind(exc))
