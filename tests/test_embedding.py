from pathlib import Path

import numpy as np
import pytest

from assistant.embedding import MODEL_SHA256, MiniLMEncoder, default_model_path, verify_model_file
from assistant.errors import ModelError


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
    from assistant.llama_adapter import MiniLMEmbedding

    emb = MiniLMEmbedding(encoder)
    q = emb.get_query_embedding("Who visited Minsk?")
    assert np.allclose(q, encoder.encode_one("Who visited Minsk?"), atol=1e-6)
    assert len(emb.get_text_embedding_batch(["a", "b", "c"])) == 3
