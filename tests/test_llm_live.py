"""A few eval questions against the real API (OpenAI, or OPENAI_BASE_URL); needs OPENAI_API_KEY."""

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from assistant import Answer, Assistant
from assistant.evaluation.harness import normalize
from tests.conftest import ROOT, SEED

pytestmark = [
    pytest.mark.live,
    pytest.mark.skipif(not os.environ.get("OPENAI_API_KEY"), reason="OPENAI_API_KEY is not set"),
]


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> tuple[Assistant, Path]:
    base = tmp_path_factory.mktemp("live")
    seeds = base / "seeds"
    seeds.mkdir()
    shutil.copy(SEED, seeds / SEED.name)
    a = Assistant(seeds_dir=seeds, index_dir=base / "index", mode="llm")
    a.ingest()
    return a, seeds


def _grounded(answer: Answer, seeds: Path) -> None:
    assert answer.mode == "llm", answer.notice  # no fallback: the API answered
    for c in answer.citations:
        assert (seeds / c.source).read_text(encoding="utf-8")[c.start : c.end] == c.quote
    shown = {int(n) for n in re.findall(r"\[(\d+)\]", answer.text)}
    assert shown <= set(range(1, len(answer.citations) + 1))


def test_live_eval_questions_are_answered_with_verified_citations(live) -> None:
    a, seeds = live
    cases = [
        json.loads(line)
        for line in (ROOT / "evals" / "seed_qa.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    picked = [c for c in cases if c["must_pass"] and c["answerable"]][:3]
    picked += [c for c in cases if not c["answerable"]][:1]
    correct = 0
    for case in picked:
        answer = a.ask(case["question"])
        _grounded(answer, seeds)
        if case["answerable"]:
            correct += any(
                normalize(g) in normalize(answer.text) for g in case["acceptable_answers"]
            )
        else:
            assert answer.abstained
    assert correct >= 2
    assert answer.usage and answer.usage["total_tokens"] > 0


def test_live_streaming_ends_with_a_grounded_answer(live) -> None:
    a, seeds = live
    *deltas, answer = list(a.stream("Who is the defense minister of Belarus?"))
    assert deltas and all("[" not in d for d in deltas)
    _grounded(answer, seeds)
    assert "Khrenin" in answer.text
