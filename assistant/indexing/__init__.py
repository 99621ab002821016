"""Indexing: embedding model, Chroma store, BM25, and the index on disk (manifest, sidecar)."""
