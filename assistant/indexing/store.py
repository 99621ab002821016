"""Chroma: the only module that imports chromadb (read path, collection management).

Embedded (`PersistentClient` under the index folder) by default; with a URL, a Chroma server
(`HttpClient`), optionally with a token, tenant and database. Every call that fails becomes a
`BackendError` naming the store; the client is kept, so the next call retries (a restarted server
is picked up without restarting the assistant).
"""

from __future__ import annotations

import contextlib
import copy
import itertools
import logging
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from assistant.errors import BackendError

log = logging.getLogger(__name__)

COLLECTION = "assistant-chunks"
_PAGE = 5000  # ids per get/delete request
DEFAULT_TIMEOUT = 30.0  # seconds a Chroma server may take to answer one request
_generations = itertools.count(1)  # embedded clients opened afresh by `reopen`
_generations_lock = threading.Lock()


class ChromaStore:
    """One Chroma collection of chunk vectors, embedded (`PersistentClient`) by default."""

    def __init__(
        self,
        path: Path,
        url: str | None = None,
        *,
        token: str = "",
        tenant: str = "",
        database: str = "",
        collection: str = COLLECTION,
        timeout: float = DEFAULT_TIMEOUT,
    ) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.url = url or None
        self.where = url or str(path)
        self.name = collection
        self.timeout = timeout
        self._args = (path, url, token, tenant, database)
        self._collection: Any = None
        settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if url:
                _answers_within(url, token, timeout)  # chromadb's own client would wait forever
                parsed = urlparse(url)
                https = parsed.scheme == "https"
                headers = {"Authorization": f"Bearer {token}", "X-Chroma-Token": token}
                options: dict[str, Any] = {"tenant": tenant} if tenant else {}
                if database:
                    options["database"] = database
                self._client = _within(timeout, lambda: chromadb.HttpClient(
                    host=parsed.hostname or "127.0.0.1",
                    port=parsed.port or (443 if https else 8000),
                    ssl=https,
                    headers=headers if token else None,
                    settings=settings,
                    **options,
                ))  # fmt: skip
                _bound_requests(self._client, timeout)
            else:
                path.mkdir(parents=True, exist_ok=True)
                # chromadb shares one client per path string in a process, and that client does
                # not see what other processes wrote after it was opened (nor survive its files
                # being replaced). Each store spells the folder anew for a client of its own;
                # `reopen` makes a new one for a new index version.
                with _generations_lock:
                    generation = next(_generations)
                where = _spelling(path, generation)
                self._client = chromadb.PersistentClient(path=where, settings=settings)
        except BackendError:
            raise
        except Exception as exc:  # chromadb raises many types; all mean "cannot open"
            raise self.failure("connecting", exc) from None

    @property
    def embedded(self) -> bool:
        return self.url is None

    def reopen(self) -> ChromaStore:
        """A new store over the same Chroma: embedded, a fresh client that reads what other
        processes wrote since this one opened (a server needs none: it returns itself)."""
        if not self.embedded:
            return self
        path, url, token, tenant, database = self._args
        return ChromaStore(path, url, token=token, tenant=tenant, database=database,
                           collection=self.name, timeout=self.timeout)

    def close(self) -> None:
        """Release the client (an embedded one closes its files once no other user has it)."""
        self._collection = None
        with contextlib.suppress(Exception):
            self._client.close()

    def view(self, name: str) -> ChromaStore:
        """The same client, another collection (ingest and readers pick it from the manifest)."""
        other = copy.copy(self)
        other.name, other._collection = name, None
        return other

    # -- errors ---------------------------------------------------------------------------------
    def failure(self, action: str, exc: BaseException) -> BackendError:
        """The `BackendError` for a failed call; also forgets the cached collection handle."""
        self._collection = None
        if self.url and _timed_out(exc):
            port = urlparse(self.url).port or 8000
            return BackendError(
                f"The Chroma server at {self.url} did not answer within {self.timeout:g} s "
                f"({action}).",
                f"Check that it is a working Chroma server (e.g. chroma run --path DIR --host "
                f"127.0.0.1 --port {port}), or raise ASSISTANT_CHROMA_TIMEOUT if it is only slow; "
                "the next request tries again.",
            )
        if self.url and _unreachable(exc):
            port = urlparse(self.url).port or 8000
            return BackendError(
                f"The Chroma server at {self.url} is not reachable ({action}).",
                f"Start it (e.g. chroma run --path DIR --host 127.0.0.1 --port {port}) or fix "
                "ASSISTANT_CHROMA_URL; the next request reconnects by itself.",
            )
        if self.url and any(w in str(exc) for w in ("Unauthorized", "Forbidden", "401", "403")):
            return BackendError(
                f"The Chroma server at {self.url} refused the request as not authorized "
                f"({action}).",
                "Set ASSISTANT_CHROMA_TOKEN to a token this server (or its proxy) accepts.",
            )
        if _not_found(exc) and action == "connecting":  # the tenant or database is missing
            return BackendError(
                f"The Chroma server at {self.where} refused the tenant or database: {exc}",
                "Create it on the server, or fix ASSISTANT_CHROMA_TENANT / "
                "ASSISTANT_CHROMA_DATABASE (empty means the server's default).",
            )
        if _not_found(exc):
            return BackendError(
                f"The Chroma collection {self.name!r} does not exist at {self.where}.",
                "Run: assistant ingest (it re-adds missing chunks), or assistant ingest --rebuild",
            )
        if action == "connecting":
            hint = "Check ASSISTANT_CHROMA_URL (is it a Chroma server?) and the Chroma settings."
            if not self.url:
                hint = ("Check that the index folder is writable; if its files are damaged, "
                        "rebuild it with: assistant ingest --rebuild")
        else:
            hint = (
                "Check that the Chroma store is reachable and intact; if it persists, run: "
                "assistant ingest --rebuild"
            )
        return BackendError(
            f"Chroma failed at {self.where} while {action} ({type(exc).__name__}: {exc}).", hint
        )

    # -- collections ----------------------------------------------------------------------------
    def collection(self, create: bool = False) -> Any:
        if self._collection is None:
            try:
                if create:
                    self._collection = self._client.get_or_create_collection(
                        self.name, embedding_function=None, metadata={"hnsw:space": "cosine"}
                    )
                else:
                    self._collection = self._client.get_collection(
                        self.name, embedding_function=None
                    )
            except Exception as exc:
                raise self.failure("opening the collection", exc) from None
        return self._collection

    def collection_names(self) -> list[str]:
        try:
            return sorted(
                c if isinstance(c, str) else c.name for c in self._client.list_collections()
            )
        except Exception as exc:
            raise self.failure("listing collections", exc) from None

    def drop(self, name: str) -> None:
        """Delete a collection; absent already is fine."""
        with contextlib.suppress(Exception):
            self._client.delete_collection(name)
        if name == self.name:
            self._collection = None

    def reset(self) -> None:
        self.drop(self.name)

    # -- chunks ---------------------------------------------------------------------------------
    def query(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        """Nearest chunk ids with cosine similarity, best first."""
        col = self.collection()
        try:
            # No count() first: Chroma returns fewer results when it holds fewer than k.
            res = col.query(query_embeddings=[vector], n_results=k, include=["distances"])
        except Exception as exc:
            raise self.failure("querying", exc) from None
        return [
            (i, 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)
        ]

    def all_ids(self) -> set[str]:
        """Every chunk id in the collection."""
        col = self.collection()
        ids: set[str] = set()
        try:
            offset = 0
            while True:
                page = col.get(include=[], limit=_PAGE, offset=offset)["ids"]
                ids.update(page)
                if len(page) < _PAGE:
                    return ids
                offset += _PAGE
        except Exception as exc:
            raise self.failure("listing chunk ids", exc) from None

    def delete_ids(self, ids: list[str]) -> None:
        col = self.collection()
        try:
            for b in range(0, len(ids), _PAGE):
                col.delete(ids=ids[b : b + _PAGE])
        except Exception as exc:
            raise self.failure("deleting chunks", exc) from None

    def ids_of_document(self, ref_doc_id: str) -> list[str]:
        return list(self.collection().get(where={"document_id": ref_doc_id}, include=[])["ids"])

    def all_ref_doc_ids(self) -> set[str]:
        res = self.collection().get(include=["metadatas"])
        return {m.get("document_id", "") for m in res["metadatas"] or []}

    def delete_documents(self, ref_doc_ids: list[str]) -> None:
        col = self.collection()
        for ref in ref_doc_ids:
            col.delete(where={"document_id": ref})


def _spelling(path: Path, n: int) -> str:
    """The folder `path` spelled in a way unique to `n`: the bits of n as "." or empty path
    components ("chroma/./" for 2, "chroma/./." for 3), so the name grows with log n only."""
    return str(path) + "/" + "/".join("." if bit == "1" else "" for bit in f"{n:b}")


def _answers_within(url: str, token: str, timeout: float) -> None:
    """Raise TimeoutError if the server accepts the connection but sends nothing back in time.

    chromadb's HTTP client waits forever and already sends requests while it is constructed, so
    one heartbeat is sent first with a deadline. Any answer, or any other failure, is left for
    chromadb to report as usual.
    """
    parsed = urlparse(url)
    port = parsed.port or (443 if parsed.scheme == "https" else 8000)
    host = parsed.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    request = urllib.request.Request(f"{parsed.scheme}://{host}:{port}/api/v2/heartbeat")
    if token:
        request.add_header("Authorization", f"Bearer {token}")
        request.add_header("X-Chroma-Token", token)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:  # http(s) only
            response.read(1024)
    except TimeoutError:
        raise
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise exc.reason from None
    except Exception:  # refused, reset, an HTTP error status, TLS: chromadb reports these
        return


def _within(timeout: float, make: Any) -> Any:
    """`make()`, or TimeoutError if it takes longer than `timeout` seconds.

    For chromadb's HttpClient constructor, whose requests have no deadline yet. A server that
    answered the heartbeat and then hangs leaves the thread waiting until it closes the connection.
    """
    result: dict[str, Any] = {}

    def run() -> None:
        try:
            result["value"] = make()
        except BaseException as exc:  # re-raised in the caller's thread
            result["error"] = exc

    worker = threading.Thread(target=run, name="chroma-connect", daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        raise TimeoutError(f"no answer within {timeout:g} s")
    if "error" in result:
        raise result["error"]
    return result["value"]


def _bound_requests(client: Any, timeout: float) -> None:
    """Give every later request of chromadb's HTTP client a deadline.

    chromadb (1.x) makes its httpx session with `timeout=None` and has no setting for it; the
    session is reached through the client's server API object. If a chromadb release moves it,
    the assistant still works, only without the deadline (a test pins that it is set).
    """
    session = getattr(getattr(client, "_server", None), "_session", None)
    if session is not None and hasattr(session, "timeout"):
        session.timeout = timeout
    else:
        log.warning("Cannot bound Chroma requests to %g s with this chromadb version.", timeout)


def _timed_out(exc: BaseException) -> bool:
    for e in _chain(exc):
        if isinstance(e, TimeoutError) or any(
            c.__name__ == "TimeoutException" and c.__module__.startswith("httpx")
            for c in type(e).__mro__
        ):
            return True
    return False


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and cur not in seen:
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _unreachable(exc: BaseException) -> bool:
    """Connection refused, reset or timed out: the server is down or the URL is wrong."""
    for e in _chain(exc):
        if isinstance(e, (ConnectionError, TimeoutError)):
            return True
        if any(
            c.__name__ == "TransportError" and c.__module__.startswith("httpx")
            for c in type(e).__mro__
        ):
            return True  # chromadb's HTTP transport: ConnectError, ReadTimeout, RemoteProtocolError
        if "could not connect" in str(e).lower():
            return True  # what chromadb.HttpClient raises when the server does not answer
    return False


def _not_found(exc: BaseException) -> bool:
    from chromadb.errors import NotFoundError

    return any(isinstance(e, NotFoundError) for e in _chain(exc)) or "does not exist" in str(exc)
