"""The versioned sidecar: chunks, sentence offsets, vectors and the lexical index of a version.

`v<N>/` holds `chunks.json` (per document: chunks and sentences with offsets), `sentences.npy`
(sentence vectors) and `lexical/` (BM25). A version's files never change once written: it is
written to `v<N>.tmp` and renamed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.errors import IndexIncompatibleError, IndexMissingError
from assistant.indexing.manifest import build_key, check_compatible, read_manifest


@dataclass
class DocEntry:
    """A document's share of the sidecar: its chunks and sentences (offsets into its text)."""

    source: str
    sha256: str
    title: str
    chars: int
    chunks: list[dict[str, Any]]  # {"id", "start", "end", "section", "s0", "s1"} (s0/s1 local)
    sentences: list[list[Any]]  # [start, end, text]


def write_sidecar(
    folder: Path,
    entries: list[DocEntry],
    vectors: list[np.ndarray],
) -> None:
    from assistant.indexing.lexical import LexicalIndex

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
    lexical: Any = None  # the version's LexicalIndex, loaded with it

    def __post_init__(self) -> None:
        self._pos = {d["source"]: i for i, d in enumerate(self.docs)}
        self._by_sha = {d["sha256"]: d["source"] for d in reversed(self.docs)}

    def source_of_sha(self, sha256: str) -> str | None:
        return self._by_sha.get(sha256)

    def title(self, source: str) -> str:
        i = self._pos.get(source)
        return self.docs[i]["title"] if i is not None else Path(source).stem

    def entry(self, source: str) -> tuple[DocEntry, np.ndarray]:
        i = self._pos[source]
        d = self.docs[i]
        base = self.doc_sent_base[i]
        vecs = self.sent_vecs[base : base + len(d["sentences"])]
        return DocEntry(
            d["source"], d["sha256"], d["title"], d["chars"], d["chunks"], d["sentences"]
        ), np.asarray(vecs)


def load_sidecar(folder: Path, lexical: bool = False) -> Sidecar:
    try:
        with (folder / "chunks.json").open(encoding="utf-8") as fh:
            docs = json.load(fh)["docs"]
        # Mapped, not read: a query touches only the candidate sentences' rows, so memory does not
        # grow with the corpus (a version's files never change once written; see the top).
        vecs = np.load(folder / "sentences.npy", mmap_mode="r")
        lex = None
        if lexical:
            from assistant.indexing.lexical import LexicalIndex

            lex = LexicalIndex.load(folder / "lexical")
    except (OSError, ValueError, KeyError, TypeError, EOFError):
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
        lex,
    )


def load_current(settings: Settings) -> tuple[dict[str, Any], Sidecar]:
    """The manifest and sidecar (with its lexical index) readers should use.

    Raises if missing or incompatible. If the sidecar vanishes while loading because two newer
    versions were published meanwhile, loads the newest instead.
    """
    for _ in range(3):
        manifest = read_manifest(settings.index_dir)
        if manifest is None:
            raise IndexMissingError(
                f"There is no index in {settings.index_dir}.", "Build it with: assistant ingest"
            )
        check_compatible(manifest, settings, settings.index_dir)
        try:
            side = load_sidecar(settings.index_dir / f"v{manifest['version']}", lexical=True)
        except IndexIncompatibleError:
            newer = read_manifest(settings.index_dir)
            if newer is None or build_key(newer) == build_key(manifest):
                raise
            continue
        return manifest, side
    raise IndexIncompatibleError(
        f"The index in {settings.index_dir} changed three times while loading.",
        "Try again once the ingest has finished.",
    )
