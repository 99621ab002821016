"""An OpenAI-compatible `POST /v1/chat/completions` over `Assistant`, with the citations added.

The only module that imports fastapi. Replies have the shape of OpenAI chat completions plus
`citations` (verified character spans), `abstained`, `mode`, and `notice` / `unsupported` (the
model's sentences left out) when there are any; with `"stream": true` they are server-sent events
of the verified text, sentence by sentence with its `[n]` markers (an unsupported sentence is
never sent), whose last chunk carries them and the final `answer` text.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hmac
import ipaddress
import json
import logging
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from fastapi import BackgroundTasks, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.config import Settings
from assistant.errors import AssistantError, BackendError, BadInputError, ConfigError
from assistant.inputs import check_history, check_text
from assistant.types import Answer

log = logging.getLogger(__name__)

MODEL_ID = "assistant"
DEFAULTS = Settings()
# Gradio's page needs inline scripts (its config), eval (gr.HTML renders through `new Function`)
# and inline styles; nothing loads from elsewhere, and nothing may frame the page.
CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; media-src 'self' blob:; "
    "connect-src 'self'; worker-src 'self' blob:; object-src 'none'; base-uri 'self'; "
    "form-action 'self'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "content-security-policy": CSP,
    "x-frame-options": "DENY",
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
}
BODY_TIMEOUT_S = 30.0  # a body that has not arrived by then is refused (408), not waited for
BUSY_STATUS = 503  # the same as Gradio's full queue, with Retry-After (docs/ui.md)


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
    """At most `size` requests in flight; the next one is refused (HTTP 503) instead of queued."""

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


def split_messages(
    messages: list[ChatMessage],
    max_history_messages: int = DEFAULTS.max_history_messages,
    max_history_chars: int = DEFAULTS.max_history_chars,
) -> tuple[str, list[dict[str, str]]]:
    """The last user message is the question; the user and assistant turns before it are history.

    Every message before the question (system ones too) counts against the history caps.
    """
    for i in range(len(messages) - 1, -1, -1):
        if messages[i].role == "user":
            before = [{"role": m.role, "content": m.text()} for m in messages[:i]]
            check_history(before, max_messages=max_history_messages, max_chars=max_history_chars)
            history = [m for m in before if m["role"] in ("user", "assistant")]
            return check_text(messages[i].text(), "question"), history
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


def host_name(value: str) -> str:
    """The host of a `Host` header or an origin's netloc, lower case, without port or final dot."""
    value = value.strip().lower()
    if value.startswith("["):  # [::1]:7860
        end = value.find("]")
        return value[1:end] if end > 0 else ""
    if value.count(":") == 1:
        value = value.partition(":")[0]
    return value.rstrip(".")


def host_allowed(name: str, allowed: tuple[str, ...]) -> bool:
    """Loopback names and addresses always; others only if listed (`*` allows any)."""
    if "*" in allowed or name in allowed or name == "localhost" or name.endswith(".localhost"):
        return bool(name)
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


class Guard:
    """ASGI middleware in front of every route (the API and the Gradio UI alike).

    Refuses a `Host` that is neither loopback nor allowed (DNS rebinding), an `Origin` from
    another site (cross-site requests; Gradio would otherwise reflect it with credentials), and a
    body larger than `max_body_bytes` (read up to the cap, never further); adds the security
    headers to every response and `Retry-After` to Gradio's "queue full".
    """

    def __init__(
        self,
        app: Any,
        *,
        allowed_hosts: tuple[str, ...],
        max_body_bytes: int,
        body_timeout: float = BODY_TIMEOUT_S,
    ) -> None:
        self.app = app
        self.allowed = allowed_hosts
        self.max_body_bytes = max_body_bytes
        self.body_timeout = body_timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self._refusal(headers)
        if refusal is None and scope["type"] == "http":
            refusal, receive = await self._read_body(headers, receive)
        if refusal is not None:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1008})
            else:
                await _with_headers(refusal, send)(scope, receive, send)
            return
        await self.app(scope, receive, _with_headers(None, send))

    def _refusal(self, headers: Headers) -> JSONResponse | None:
        host = host_name(headers.get("host", ""))
        if not host_allowed(host, self.allowed):
            shown = headers.get("host", "")[:100]
            return _error(
                400,
                f"The Host {shown!r} is not served here."
                if shown
                else "The request has no Host header.",
                hint="Add the name to ASSISTANT_ALLOWED_HOSTS (comma-separated) to serve it.",
            )
        origin = headers.get("origin")
        if origin is not None and not host_allowed(_origin_host(origin), self.allowed):
            return _error(
                403,
                f"Requests from the page at {origin[:100]!r} are not allowed.",
                hint="Open the assistant from its own address, or add that page's host to "
                "ASSISTANT_ALLOWED_HOSTS.",
            )
        length = headers.get("content-length")
        if length is not None:
            if not length.isdigit():
                return _error(400, f"The Content-Length {length[:40]!r} is not a number.")
            if int(length) > self.max_body_bytes:
                return self._too_large(int(length))
        return None

    def _too_large(self, size: int | None) -> JSONResponse:
        message = (
            f"The request body is {size} bytes; the limit is {self.max_body_bytes} bytes."
            if size is not None
            else f"The request body is larger than the limit of {self.max_body_bytes} bytes."
        )
        return _error(
            413,
            message,
            hint="Send a shorter history, or raise ASSISTANT_MAX_REQUEST_BYTES.",
        )

    async def _read_body(self, headers: Headers, receive: Any) -> tuple[JSONResponse | None, Any]:
        """Read a body (chunked ones too) up to the cap; replay it to the app afterwards."""
        if "content-length" not in headers and "transfer-encoding" not in headers:
            return None, receive
        chunks: list[bytes] = []
        size = 0
        deadline = asyncio.get_running_loop().time() + self.body_timeout
        while True:
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                return _error(
                    408,
                    f"The request body did not arrive within {self.body_timeout:g} s.",
                    hint="Send the whole body at once, with a Content-Length that matches it.",
                    headers={"Connection": "close"},
                ), receive
            if message["type"] != "http.request":
                return None, _replay([message], receive)
            size += len(message.get("body", b""))
            if size > self.max_body_bytes:
                return self._too_large(None), receive
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = {"type": "http.request", "body": b"".join(chunks), "more_body": False}
        return None, _replay([body], receive)


def _origin_host(origin: str) -> str:
    try:
        return host_name(urlsplit(origin).netloc) if "://" in origin else ""
    except ValueError:
        return ""


def _replay(messages: list[dict[str, Any]], receive: Any) -> Any:
    async def replayed() -> Any:
        return messages.pop(0) if messages else await receive()

    return replayed


def _with_headers(response: JSONResponse | None, send: Any) -> Any:
    """`send` adding the security headers (and Retry-After on a 503) to the response start."""

    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = MutableHeaders(scope=message)
            for name, value in SECURITY_HEADERS.items():
                if name not in headers:
                    headers[name] = value
            if message.get("status") == BUSY_STATUS and "retry-after" not in headers:
                headers["retry-after"] = "1"
        await send(message)

    if response is None:
        return sending

    async def respond(scope: Any, receive: Any, _send: Any) -> None:
        await response(scope, receive, sending)

    return respond


def create_app(
    assistant: Any,
    *,
    auth: str = "",
    queue_size: int = DEFAULTS.ui_queue_size,
    max_request_bytes: int = DEFAULTS.max_request_bytes,
    max_history_messages: int = DEFAULTS.max_history_messages,
    max_history_chars: int = DEFAULTS.max_history_chars,
    allowed_hosts: tuple[str, ...] = (),
    body_timeout: float = BODY_TIMEOUT_S,
) -> FastAPI:
    """A FastAPI app with `/v1/chat/completions` and `/v1/models`; `auth` is `user:password`.

    Whatever is mounted on it later (the Gradio UI) sits behind the same `Guard`.
    """
    app = FastAPI(title="assistant", docs_url=None, redoc_url=None, openapi_url=None)
    gate = _Gate(queue_size)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body")
        return _error(400, f"Invalid request: {where or 'body'}: {first.get('msg', 'malformed')}.")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code
        message = str(exc.detail) if status != 400 else (
            "The request body could not be parsed as JSON (not UTF-8, or nested too deeply)."
        )
        return _error(status, message.rstrip(".") + ".", headers=getattr(exc, "headers", None))

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

    # added last, so outermost: it answers before the login check and everything behind it
    app.add_middleware(
        Guard,
        allowed_hosts=allowed_hosts,
        max_body_bytes=max_request_bytes,
        body_timeout=body_timeout,
    )

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
                BUSY_STATUS,
                f"The server is busy ({queue_size} requests in flight).",
                "server_error",
                hint="Try again in a moment.",
                headers={"Retry-After": "1"},
            )
        streaming = False
        try:
            question, turns = split_messages(body.messages, max_history_messages, max_history_chars)
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

    @app.api_route(
        "/v1/{path:path}",
        methods=["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"],
    )
    def unknown(path: str, request: Request) -> JSONResponse:
        known = {"models": "GET, HEAD", "chat/completions": "POST"}
        if path in known:
            return _error(405, f"/v1/{path} takes {known[path]}, not {request.method}.",
                          headers={"Allow": known[path]})
        return _error(404, f"There is no /v1/{path[:100]}; the API has /v1/chat/completions "
                      "and /v1/models.")

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
    if answer.related:  # an abstention's closest passages: related, not an answer
        out["related"] = [c.to_dict() for c in answer.related]
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
    hint: str = "",
) -> JSONResponse:
    text = f"{message} {hint}".strip()
    return JSONResponse({"error": _error_body(text, kind)}, status_code=status, headers=headers)


def _assistant_error(exc: AssistantError) -> JSONResponse:
    status = 503  # index missing, seeds folder or model problems: the server is not ready
    if isinstance(exc, BadInputError):
        status = 400
    elif isinstance(exc, BackendError):
        status = 502
    return _error(status, str(exc), _kind(exc))
