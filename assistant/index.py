"""The index on disk: manifest, Chroma collection and the lexical sidecar; incremental ingest.

Layout under the index folder:
    manifest.json      written last, atomically: the version readers use
    chroma/            Chroma's files (embedded mode)
    v<N>/              sidecar of version N: chunks.json, sentences.npy, lexical/

Chunk ids carry the document's content hash, so a new version only adds the chunks of added or
changed documents; the manifest switch makes them visible, and stale chunks are deleted after it.
A reader ignores any chunk whose document hash is not in its manifest.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .config import Settings
from .documents import Document, load_documents
from .errors import IndexIncompatibleError, IndexMissingError, SeedsError
from .text import make_chunks, parse_document
from .types import IngestSummary

log = logging.getLogger(__name__)

FORMAT = 1
MANIFEST = "manifest.json"


def _ref_doc_id(source: str, sha: str) -> str:
    return f"{source}@{sha[:16]}"


def _chunk_id(source: str, sha: str, i: int) -> str:
    return f"{hashlib.sha1(source.encode()).hexdigest()[:10]}-{sha[:16]}-{i}"


def read_manifest(index_dir: Path) -> dict[str, Any] | None:
    path = index_dir / MANIFEST
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise IndexIncompatibleError(
            f"The index manifest {path} is unreadable or corrupt.",
            "Rebuild the index with: assistant ingest --rebuild",
        ) from None


def expected_identity(settings: Settings) -> dict[str, Any]:
    from .embedding import DIMENSION, MODEL_ID, MODEL_SHA256

    return {
        "format": FORMAT,
        "embedding": {"model_id": MODEL_ID, "dimension": DIMENSION, "sha256": MODEL_SHA256},
        "chunking": settings.chunking_params(),
    }


def check_compatible(manifest: dict[str, Any], settings: Settings, index_dir: Path) -> None:
    want = expected_identity(settings)
    got = {k: manifest.get(k) for k in want}
    if got != want:
        diffs = [k for k in want if got[k] != want[k]]
        raise IndexIncompatibleError(
            f"The index in {index_dir} was built with other {' and '.join(diffs)} settings "
            f"({got.get('embedding') if 'embedding' in diffs else got.get(diffs[0])}).",
            "Rebuild it with: assistant ingest --rebuild",
        )


def _write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


@dataclass
class DocEntry:
    """A document's share of the sidecar: its chunks and sentences (offsets into its text)."""

    source: str
    sha256: str
    title: str
    chars: int
    chunks: list[dict[str, Any]]  # {"id", "start", "end", "section", "s0", "s1"} (s0/s1 local)
    sentences: list[list[Any]]  # [start, end, text]


def _parse(doc: Document, settings: Settings) -> DocEntry:
    parsed = parse_document(doc.text)
    chunks = make_chunks(parsed.sentences, settings.chunk_sentences, settings.chunk_max_chars)
    sentences: list[list[Any]] = []
    chunk_rows = []
    for i, ch in enumerate(chunks):
        s0 = len(sentences)
        sentences.extend([s.start, s.end, s.text] for s in ch.sentences)
        chunk_rows.append(
            {
                "id": _chunk_id(doc.source, doc.sha256, i),
                "start": ch.start,
                "end": ch.end,
                "section": ch.section,
                "s0": s0,
                "s1": len(sentences),
            }
        )
    title = parsed.title or Path(doc.source).stem
    return DocEntry(doc.source, doc.sha256, title, len(doc.text), chunk_rows, sentences)


class _Progress:
    """A minimal progress bar on stderr, shown only on a terminal."""

    def __init__(self, total: int, label: str, enabled: bool) -> None:
        self.total, self.label, self.n = total, label, 0
        self.enabled = enabled and total > 0 and sys.stderr.isatty()

    def update(self, n: int = 1) -> None:
        self.n += n
        if self.enabled:
            width = 30
            done = int(width * self.n / self.total)
            sys.stderr.write(
                f"\r{self.label} [{'#' * done}{'.' * (width - done)}] {self.n}/{self.total}"
            )
            if self.n >= self.total:
                sys.stderr.write("\n")
            sys.stderr.flush()


def ingest(
    settings: Settings,
    encoder_factory: Any,
    store_factory: Any,
    rebuild: bool = False,
    progress: bool = True,
) -> IngestSummary:
    """Build or refresh the index for the seeds folder; returns what changed."""
    t0 = time.perf_counter()
    index_dir = settings.index_dir
    docs, skipped = load_documents(settings.seeds_dir)
    if not docs:
        raise SeedsError(
            f"No readable .txt or .md document found in {settings.seeds_dir}"
            + (f" ({len(skipped)} skipped)." if skipped else "."),
            "Add UTF-8 .txt or .md files to the seeds folder; the index was left as it is.",
        )
    index_dir.mkdir(parents=True, exist_ok=True)
    old = None if rebuild else read_manifest(index_dir)
    if old is not None:
        try:
            check_compatible(old, settings, index_dir)
        except IndexIncompatibleError:
            raise IndexIncompatibleError(
                f"The index in {index_dir} was built with another embedding model or other "
                "chunking parameters, so it cannot be updated in place.",
                "Rebuild it with: assistant ingest --rebuild",
            ) from None
    old_docs: dict[str, dict[str, Any]] = (old or {}).get("documents", {})
    old_side = _load_sidecar(index_dir / f"v{old['version']}") if old else None

    store = store_factory()
    if rebuild:
        store.reset()
    collection = store.collection(create=True)

    current = {d.source: d for d in docs}
    unchanged = [s for s, d in current.items() if old_docs.get(s, {}).get("sha256") == d.sha256]
    added = [s for s in current if s not in old_docs]
    updated = [s for s in current if s in old_docs and s not in unchanged]
    removed = [s for s in old_docs if s not in current]

    entries: dict[str, DocEntry] = {}
    vectors: dict[str, np.ndarray] = {}
    if old_side is not None:
        for s in unchanged:
            entries[s], vectors[s] = old_side.entry(s)
    todo = [current[s] for s in added + updated]
    if todo:
        encoder = encoder_factory()
        from .llama_adapter import add_chunks, embed_texts

        bar = _Progress(len(todo), "Embedding", progress)
        for doc in todo:
            entry = _parse(doc, settings)
            texts = [s[2] for s in entry.sentences]
            sent_vecs = np.asarray(embed_texts(encoder, texts), dtype=np.float32).reshape(
                len(texts), -1
            )
            entries[doc.source], vectors[doc.source] = entry, sent_vecs
            records = []
            for ch in entry.chunks:
                v = sent_vecs[ch["s0"] : ch["s1"]].mean(axis=0)
                v = v / max(float(np.linalg.norm(v)), 1e-12)
                records.append(
                    {
                        "id": ch["id"],
                        "text": doc.text[ch["start"] : ch["end"]],
                        "vector": v.tolist(),
                        "ref_doc_id": _ref_doc_id(doc.source, doc.sha256),
                        "metadata": {
                            "source": doc.source,
                            "start": ch["start"],
                            "end": ch["end"],
                            "section": ch["section"],
                            "title": entry.title,
                            "doc_sha256": doc.sha256,
                        },
                    }
                )
            if records:
                add_chunks(collection, records)
            bar.update()

    version = (old["version"] + 1) if old else 1
    while (index_dir / f"v{version}").exists():  # leftovers of an interrupted ingest
        shutil.rmtree(index_dir / f"v{version}", ignore_errors=True)
        version += 1
    order = sorted(entries)
    _write_sidecar(
        index_dir / f"v{version}", [entries[s] for s in order], [vectors[s] for s in order]
    )
    seconds = time.perf_counter() - t0
    manifest = {
        **expected_identity(settings),
        "version": version,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "build_seconds": round(seconds, 3),
        "documents": {
            s: {
                "sha256": entries[s].sha256,
                "chars": entries[s].chars,
                "chunks": len(entries[s].chunks),
                "title": entries[s].title,
            }
            for s in order
        },
        "skipped": skipped,
    }
    _write_json_atomic(index_dir / MANIFEST, manifest)

    # After the switch: drop chunks no manifest needs any more, and old sidecars.
    live = {_ref_doc_id(s, entries[s].sha256) for s in order}
    stale = sorted(store.all_ref_doc_ids() - live)
    if stale:
        store.delete_documents(stale)
    for child in index_dir.iterdir():
        if (
            child.is_dir()
            and child.name.startswith("v")
            and child.name[1:].isdigit()
            and int(child.name[1:]) < version - 1
        ):
            shutil.rmtree(child, ignore_errors=True)
    return IngestSummary(
        added=len(added),
        updated=len(updated),
        removed=len(removed),
        unchanged=len(unchanged),
        skipped=tuple(skipped),
        chunks=sum(len(e.chunks) for e in entries.values()),
        seconds=seconds,
    )


def _write_sidecar(folder: Path, entries: list[DocEntry], vectors: list[np.ndarray]) -> None:
    from .lexical import LexicalIndex

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    docs = [
        {
            "source": e.source,
            "sha256": e.sha256,
            "title": e.title,
            "chars": e.chars,
            "chunks": e.chunks,
            "sentences": e.sentences,
        }
        for e in entries
    ]
    with (tmp / "chunks.json").open("w", encoding="utf-8") as fh:
        json.dump({"docs": docs}, fh, ensure_ascii=False)
    mat = np.concatenate(vectors) if vectors else np.zeros((0, 384), dtype=np.float32)
    np.save(tmp / "sentences.npy", mat.astype(np.float32))
    chunk_texts, sent_texts = [], []
    for e in entries:
        for ch in e.chunks:
            sents = e.sentences[ch["s0"] : ch["s1"]]
            chunk_texts.append(" ".join([ch["section"], e.title] + [s[2] for s in sents]))
        sent_texts.extend(s[2] for s in e.sentences)
    LexicalIndex.build(chunk_texts, sent_texts).save(tmp / "lexical")
    os.replace(tmp, folder)


@dataclass
class Sidecar:
    """Everything the query path needs besides Chroma, in flat arrays."""

    folder: Path
    docs: list[dict[str, Any]]
    chunk_ids: list[str]
    chunk_doc: np.ndarray  # chunk -> doc position
    chunk_s0: np.ndarray  # chunk -> first global sentence
    chunk_s1: np.ndarray
    sent_doc: np.ndarray  # sentence -> doc position
    sent_start: np.ndarray
    sent_end: np.ndarray
    sent_text: list[str]
    sent_vecs: np.ndarray
    doc_sent_base: list[int]

    def entry(self, source: str) -> tuple[DocEntry, np.ndarray]:
        i = next(k for k, d in enumerate(self.docs) if d["source"] == source)
        d = self.docs[i]
        base = self.doc_sent_base[i]
        vecs = self.sent_vecs[base : base + len(d["sentences"])]
        return DocEntry(
            d["source"], d["sha256"], d["title"], d["chars"], d["chunks"], d["sentences"]
        ), np.asarray(vecs)


def _load_sidecar(folder: Path) -> Sidecar:
    try:
        with (folder / "chunks.json").open(encoding="utf-8") as fh:
            docs = json.load(fh)["docs"]
        vecs = np.load(folder / "sentences.npy")
    except (OSError, ValueError, KeyError):
        raise IndexIncompatibleError(
            f"The index files in {folder} are missing or corrupt.",
            "Rebuild the index with: assistant ingest --rebuild",
        ) from None
    chunk_ids, chunk_doc, s0s, s1s = [], [], [], []
    sent_doc, starts, ends, texts, bases = [], [], [], [], []
    base = 0
    for di, d in enumerate(docs):
        bases.append(base)
        for ch in d["chunks"]:
            chunk_ids.append(ch["id"])
            chunk_doc.append(di)
            s0s.append(base + ch["s0"])
            s1s.append(base + ch["s1"])
        for s in d["sentences"]:
            sent_doc.append(di)
            starts.append(s[0])
            ends.append(s[1])
            texts.append(s[2])
        base += len(d["sentences"])
    return Sidecar(
        folder,
        docs,
        chunk_ids,
        np.array(chunk_doc, dtype=np.int32),
        np.array(s0s, dtype=np.int32),
        np.array(s1s, dtype=np.int32),
        np.array(sent_doc, dtype=np.int32),
        np.array(starts, dtype=np.int64),
        np.array(ends, dtype=np.int64),
        texts,
        vecs,
        bases,
    )


def load_current(settings: Settings) -> tuple[dict[str, Any], Sidecar]:
    """The manifest and sidecar readers should use; raises if missing or incompatible."""
    manifest = read_manifest(settings.index_dir)
    if manifest is None:
        raise IndexMissingError(
            f"There is no index in {settings.index_dir}.", "Build it with: assistant ingest"
        )
    check_compatible(manifest, settings, settings.index_dir)
    return manifest, _load_sidecar(settings.index_dir / f"v{manifest['version']}")
