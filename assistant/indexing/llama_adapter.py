"""llama-index on the write path: the encoder as a `BaseEmbedding`, nodes into Chroma.

Importing llama_index.core takes about 2 s, so only ingest imports this module; the query path reads
the same collection through `store.ChromaStore` directly (see docs/architecture.md).
"""

from __future__ import annotations

from typing import Any

from llama_index.core.base.embeddings.base import BaseEmbedding
from llama_index.core.schema import NodeRelationship, RelatedNodeInfo, TextNode
from llama_index.vector_stores.chroma import ChromaVectorStore
from pydantic import PrivateAttr

from assistant.indexing.embedding import MiniLMEncoder


class MiniLMEmbedding(BaseEmbedding):
    """all-MiniLM-L6-v2 (int8 ONNX) as a llama-index embedding model."""

    _encoder: MiniLMEncoder = PrivateAttr()

    def __init__(self, encoder: MiniLMEncoder, **kwargs: Any) -> None:
        super().__init__(model_name=encoder.model_id, embed_batch_size=512, **kwargs)
        self._encoder = encoder

    @classmethod
    def class_name(cls) -> str:
        return "MiniLMEmbedding"

    def _get_query_embedding(self, query: str) -> list[float]:
        return self._encoder.encode_one(query).tolist()

    async def _aget_query_embedding(self, query: str) -> list[float]:
        return self._get_query_embedding(query)

    def _get_text_embedding(self, text: str) -> list[float]:
        return self._encoder.encode_one(text).tolist()

    def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
        return self._encoder.encode(texts).tolist()


def add_chunks(collection: Any, records: list[dict[str, Any]]) -> None:
    """Write chunk records (id, text, vector, metadata, ref_doc_id) through ChromaVectorStore."""
    store = ChromaVectorStore(chroma_collection=collection)
    nodes = []
    for r in records:
        node = TextNode(id_=r["id"], text=r["text"], metadata=r["metadata"], embedding=r["vector"])
        node.relationships[NodeRelationship.SOURCE] = RelatedNodeInfo(node_id=r["ref_doc_id"])
        node.excluded_embed_metadata_keys = list(r["metadata"])
        node.excluded_llm_metadata_keys = list(r["metadata"])
        nodes.append(node)
    for b in range(0, len(nodes), 2000):
        store.add(nodes[b : b + 2000])


def embed_texts(encoder: MiniLMEncoder, texts: list[str]) -> list[list[float]]:
    """Embed through the llama-index interface, longest-last so batches pad little."""
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    vectors = MiniLMEmbedding(encoder).get_text_embedding_batch([texts[i] for i in order])
    out: list[list[float]] = [[] for _ in texts]
    for pos, i in enumerate(order):
        out[i] = vectors[pos]
    return out
