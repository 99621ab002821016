"""Chroma: the only module that imports chromadb (read path, collection management)."""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from .errors import BackendError

log = logging.getLogger(__name__)

COLLECTION = "assistant-chunks"


class ChromaStore:
    """One Chroma collection of chunk vectors, embedded (`PersistentClient`) by default."""

    def __init__(self, path: Path, url: str | None = None) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.where = url or str(path)
        settings = ChromaSettings(anonymized_telemetry=False)
        try:
            if url:
                from urllib.parse import urlparse

                parsed = urlparse(url)
                self._client = chromadb.HttpClient(
                    host=parsed.hostname or "127.0.0.1",
                    port=parsed.port or 8000,
                    ssl=parsed.scheme == "https",
                    settings=settings,
                )
            else:
                path.mkdir(parents=True, exist_ok=True)
                self._client = chromadb.PersistentClient(path=str(path), settings=settings)
        except Exception as exc:  # chromadb raises many types; all mean "cannot open"
            raise BackendError(
                f"Cannot open the Chroma store at {self.where}: {exc}",
                "Check the path or URL, or rebuild with assistant ingest --rebuild.",
            ) from None
        self._collection: Any = None

    def collection(self, create: bool = False) -> Any:
        if self._collection is None:
            try:
                if create:
                    self._collection = self._client.get_or_create_collection(
                        COLLECTION, embedding_function=None, metadata={"hnsw:space": "cosine"}
                    )
                else:
                    self._collection = self._client.get_collection(
                        COLLECTION, embedding_function=None
                    )
            except Exception as exc:
                raise BackendError(
                    f"The Chroma collection {COLLECTION!r} at {self.where} cannot be opened "
                    f"({type(exc).__name__}).",
                    "Rebuild it with: assistant ingest --rebuild",
                ) from None
        return self._collection

    def reset(self) -> None:
        with contextlib.suppress(Exception):  # absent already
            self._client.delete_collection(COLLECTION)
        self._collection = None

    def query(self, vector: list[float], k: int) -> list[tuple[str, float]]:
        """Nearest chunk ids with cosine similarity, best first."""
        col = self.collection()
        n = min(k, col.count())
        if n == 0:
            return []
        try:
            res = col.query(query_embeddings=[vector], n_results=n, include=["distances"])
        except Exception as exc:
            raise BackendError(
                f"Chroma query failed at {self.where}: {exc}",
                "Check that the Chroma store is reachable.",
            ) from None
        return [
            (i, 1.0 - float(d)) for i, d in zip(res["ids"][0], res["distances"][0], strict=True)
        ]

    def ids_of_document(self, ref_doc_id: str) -> list[str]:
        return list(self.collection().get(where={"document_id": ref_doc_id}, include=[])["ids"])

    def all_ref_doc_ids(self) -> set[str]:
        res = self.collection().get(include=["metadatas"])
        return {m.get("document_id", "") for m in res["metadatas"] or []}

    def delete_documents(self, ref_doc_ids: list[str]) -> None:
        col = self.collection()
        for ref in ref_doc_ids:
            col.delete(where={"document_id": ref})
