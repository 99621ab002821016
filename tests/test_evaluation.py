from pathlib import Path

import pytest

from assistant.errors import BadInputError
from assistant.evaluation import (
    aggregate,
    baseline_of,
    compare,
    load_cases,
    normalize,
    token_f1,
)

ROOT = Path(__file__).resolve().parent.parent


def test_normalize_and_token_f1_squad_style_punctuation_as_space() -> None:
    assert normalize("The U.S.  top-trade partner!") == "u s top trade partner"
    assert token_f1("Mexico replaced China", "Mexico") == pytest.approx(0.5)
    assert token_f1("nothing here", "Mexico") == 0.0


def test_every_shipped_eval_case_resolves_its_evidence() -> None:
    seed = load_cases(ROOT / "evals" / "seed_qa.jsonl", ROOT / "seeds")
    enc = load_cases(
        ROOT / "evals" / "encyclopedia_qa.jsonl", ROOT / "evals" / "corpora" / "encyclopedia"
    )
    assert len(seed) >= 80 and len(enc) >= 30
    assert sum(not c["answerable"] for c in seed) >= 15
    for c in seed + enc:
        assert len(c["gold_spans"]) == len(c["evidence"])


def test_a_case_whose_evidence_is_not_in_the_document_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "d.txt").write_text("Alpha beta gamma.", encoding="utf-8")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(
        '{"id": "x", "question": "q?", "answerable": true, "acceptable_answers": '
        '["beta"], "evidence": ["delta"], "tags": ["factoid"], "must_pass": false}\n'
    )
    with pytest.raises(BadInputError, match="not in the corpus"):
        load_cases(bad, tmp_path / "corpus")


def _result(cid: str, passed: bool, correct: bool) -> dict:
    return {
        "id": cid,
        "question": "q",
        "answer": "a",
        "tags": ["factoid"],
        "answerable": True,
        "must_pass": False,
        "abstained": not correct,
        "n_citations": 1,
        "citation_valid": True,
        "chars_cited": 100,
        "latency_ms": 5.0,
        "correct": correct,
        "f1": 1.0 if correct else 0.0,
        "evidence_hit": correct,
        "evidence_f1": 0.5,
        "retrieval_rank": 1 if correct else None,
        "passed": passed,
    }


def test_gate_reports_regressed_metrics_and_cases() -> None:
    good = [_result(f"c{i}", True, True) for i in range(10)]
    rep = {"set": "s", "overall": aggregate(good), "by_tag": {}, "results": good}
    base = baseline_of([rep])
    assert compare([rep], base) == []
    broken = [_result(f"c{i}", i > 2, i > 2) for i in range(10)]  # a retriever losing 3 cases
    problems = compare(
        [{"set": "s", "overall": aggregate(broken), "by_tag": {}, "results": broken}], base
    )
    assert any("answer_correctness fell from 1 to 0.7" in p for p in problems)
    assert any("c0 regressed" in p for p in problems)
