from pathlib import Path

import numpy as np
import pytest

from assistant.errors import ModelError
from assistant.indexing.embedding import (
    MODEL_SHA256,
    MiniLMEncoder,
    default_model_path,
    verify_model_file,
)


def test_model_file_passes_its_checksum() -> None:
    verify_model_file(default_model_path())


def test_tampered_model_file_is_refused(tmp_path: Path) -> None:
    fake = tmp_path / "model.onnx"
    fake.write_bytes(b"not a model")
    with pytest.raises(ModelError, match="sha256"):
        verify_model_file(fake, MODEL_SHA256)


def test_vectors_are_unit_length_and_semantic(encoder: MiniLMEncoder) -> None:
    v = encoder.encode(
        [
            "Mexico became the top U.S. trade partner.",
            "Which country is America's largest trading partner?",
            "A recipe for banana bread with walnuts.",
        ]
    )
    assert v.shape == (3, 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert v[0] @ v[1] > v[0] @ v[2] + 0.3


def test_batching_does_not_change_vectors(encoder: MiniLMEncoder) -> None:
    texts = ["short", "a much longer sentence that needs padding in a batch with others", "mid"]
    together = encoder.encode(texts)
    alone = np.stack([encoder.encode_one(t) for t in texts])
    assert np.allclose(together, alone, atol=1e-4)


def test_llama_index_embedding_wrapper_matches_encoder(encoder: MiniLMEncoder) -> None:
    from assistant.indexing.llama_adapter import MiniLMEmbedding

    emb = MiniLMEmbedding(encoder)
    q = emb.get_query_embedding("Who visited Minsk?")
    assert np.allclose(q, encoder.encode_one("Who visited Minsk?"), atol=1e-6)
    assert len(emb.get_text_embedding_batch(["a", "b", "c"])) == 3


# -- the compact copy of the model (assistant/onnx_compact.py) ------------------------------------

TEXTS = [
    "Mexico became the top U.S. trade partner.",
    "Which country is America's largest trading partner?",
    "Zebra crossings, 1,234 umbrellas and the résumé of Gen. Ortiz.",
    "a",
]


def test_compact_copy_gives_the_same_vectors_as_the_shipped_model(tmp_path: Path) -> None:
    from assistant.indexing.onnx_compact import compacted_model_path

    path = compacted_model_path(default_model_path(), MODEL_SHA256, tmp_path)
    assert path.parent == tmp_path and path.with_suffix(".onnx.data").is_file()
    compact = MiniLMEncoder(cache_dir=tmp_path)
    shipped = MiniLMEncoder(compact=False)
    assert np.abs(compact.encode(TEXTS) - shipped.encode(TEXTS)).max() <= 1e-6


def test_compact_rewrite_finds_both_embedding_tables_and_nothing_else() -> None:
    from assistant.indexing.onnx_compact import compact_model_bytes

    rewritten, count = compact_model_bytes(default_model_path().read_bytes())
    assert count == 2  # word and position embeddings; the MatMul weights are left as they are
    assert compact_model_bytes(rewritten) == (rewritten, 0)  # idempotent: nothing left to do
    assert compact_model_bytes(b"") == (b"", 0)


def test_compact_copy_is_reused_then_remade_when_damaged(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    from assistant.indexing.onnx_compact import compacted_model_path

    first = compacted_model_path(default_model_path(), MODEL_SHA256, tmp_path)
    data = first.with_suffix(".onnx.data")
    made = data.stat().st_mtime_ns
    assert compacted_model_path(default_model_path(), MODEL_SHA256, tmp_path) == first
    assert data.stat().st_mtime_ns == made  # reused, not rewritten
    good = data.read_bytes()
    data.write_bytes(good[:-1] + bytes([good[-1] ^ 0xFF]))
    assert compacted_model_path(default_model_path(), MODEL_SHA256, tmp_path) == first
    assert "damaged" in caplog.text
    assert data.read_bytes() == good


def test_unwritable_cache_falls_back_to_the_shipped_model(tmp_path: Path, caplog) -> None:  # type: ignore[no-untyped-def]
    from assistant.indexing.onnx_compact import compacted_model_path

    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the cache folder should be")
    path = compacted_model_path(default_model_path(), MODEL_SHA256, blocker / "cache")
    assert path == default_model_path()
    assert "as shipped" in caplog.text
    assert MiniLMEncoder(cache_dir=blocker / "cache").encode(["still works"]).shape == (1, 384)
