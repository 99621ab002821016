"""The answerability stage: one decision over ranked evidence, its reasons, both modes; the
related passages shown when it abstains."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.answering.answerability import (
    RELEVANCE_SIGNALS,
    WEIGHTS_FILE,
    Candidate,
    Model,
    Weights,
    decide,
    load_weights,
)
from assistant.documents.splitter import parse_document

DOC = (
    "Harbour Notes\n\n"
    "The lighthouse on Gull Point was built in 1874 by the engineer Ann Lee.\n"
    "Its lamp was converted to electricity in 1931.\n\n"
    "The harbour master keeps a log of every ship that enters the harbour.\n"
)


def _weights() -> Weights:
    answer = Model(-2.0, {"cosine": 4.0, "type_missing": -3.0, "margin": 1.0})
    relevance = Model(-2.0, {"cosine": 4.0})
    return Weights(Model(0.0, {"cosine": 1.0}), answer, relevance)


def _cand(rank: float, **signals: float) -> Candidate:
    return Candidate(evidence=None, signals=signals, rank=rank)


def test_decide_answers_above_the_threshold_and_gives_each_signals_share() -> None:
    ranked = [_cand(2.0, cosine=0.9), _cand(1.5, cosine=0.5)]
    d = decide("q?", ranked, mode="extractive", threshold=0.5, weights=_weights())
    logit = -2.0 + 4.0 * 0.9 + 1.0 * 0.5  # bias + cosine + margin over the second
    assert d.answer and d.confidence == pytest.approx(1 / (1 + math.exp(-logit)))
    assert d.reasons == {"bias": -2.0, "cosine": 3.6, "margin": 0.5}
    assert d.to_trace()["decision"] == "answer" and d.candidate is ranked[0]
    low = decide("q?", ranked, mode="extractive", threshold=0.99, weights=_weights())
    assert not low.answer and low.to_trace()["decision"] == "abstain"


def test_llm_mode_reads_relevance_only_so_a_missing_answer_type_does_not_gate_it() -> None:
    ranked = [_cand(1.0, cosine=0.9, type_missing=1.0), _cand(1.0, cosine=0.1)]
    extractive = decide("How many?", ranked, mode="extractive", threshold=0.5, weights=_weights())
    llm = decide("How many?", ranked, mode="llm", threshold=0.5, weights=_weights())
    assert not extractive.answer and extractive.reasons["type_missing"] == -3.0
    assert llm.answer and "type_missing" not in llm.reasons and "margin" not in llm.reasons


def test_decide_abstains_on_no_evidence_and_refuses_an_unknown_mode() -> None:
    d = decide("q?", [], mode="llm", threshold=0.1, weights=_weights())
    assert not d.answer and d.reasons == {"no_evidence": 1.0}
    with pytest.raises(ValueError, match="mode"):
        decide("q?", [], mode="magic", threshold=0.1)


def test_fitted_weights_name_their_public_train_data_and_cover_every_signal(
    tmp_path: Path,
) -> None:
    raw = json.loads(WEIGHTS_FILE.read_text(encoding="utf-8"))
    assert "SQuAD 2.0 train" in raw["fitted_on"]["dataset"]
    assert len(raw["fitted_on"]["sha256"]) == 64 and raw["fitted_on"]["questions"] >= 1000
    a = Assistant(seeds_dir=_seeds(tmp_path), index_dir=tmp_path / "index", mode="extractive")
    engine = a._ensure_engine()
    r = engine.retriever.retrieve("When was the lighthouse built?")
    cands = engine.answerer.candidates("When was the lighthouse built?", r.question_tokens,
                                       r.evidence)
    produced = set(cands[0].signals)
    w = load_weights()
    assert produced <= set(w.rank.weights) and produced <= set(w.answer.weights)
    assert set(w.relevance.weights) == set(RELEVANCE_SIGNALS)


def _seeds(tmp_path: Path) -> Path:
    seeds = tmp_path / "seeds"
    seeds.mkdir(exist_ok=True)
    (seeds / "harbour.txt").write_text(DOC, encoding="utf-8")
    return seeds


def test_answer_trace_holds_the_decision_and_its_reasons(tmp_path: Path) -> None:
    a = Assistant(seeds_dir=_seeds(tmp_path), index_dir=tmp_path / "index", mode="extractive")
    ans = a.ask("When was the lighthouse on Gull Point built?")
    assert not ans.abstained and "1874" in ans.text
    trace = ans.trace["answerability"]
    assert trace["decision"] == "answer" and trace["mode"] == "extractive"
    assert trace["confidence"] >= trace["threshold"] and "cosine" in trace["reasons"]


def test_abstention_shows_related_passages_verified_and_not_as_an_answer(tmp_path: Path) -> None:
    text = (_seeds(tmp_path) / "harbour.txt").read_text(encoding="utf-8")
    always = Assistant(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index",
                       mode="extractive", abstain_threshold=1.0, related_threshold=0.0)
    ans = always.ask("When was the lighthouse on Gull Point built?")
    assert ans.abstained and ans.citations == [] and ans.text == "The documents do not say."
    assert ans.related and len(ans.related) <= 3
    for c in ans.related:
        assert text[c.start : c.end] == c.quote
    assert "1874" in ans.related[0].quote
    assert ans.to_dict()["related"][0] == ans.related[0].to_dict()
    none = Assistant(seeds_dir=tmp_path / "seeds", index_dir=tmp_path / "index",
                     mode="extractive", abstain_threshold=1.0, related_k=0)
    assert none.ask("When was the lighthouse built?").related == []
    assert "related" not in none.ask("When was the lighthouse built?").to_dict()


def test_cli_prints_related_passages_under_the_refusal(tmp_path: Path) -> None:
    seeds = _seeds(tmp_path)
    out = subprocess.run(
        [sys.executable, "-m", "assistant", "ask", "--seeds", str(seeds), "--index",
         str(tmp_path / "index"), "When was the lighthouse on Gull Point built?"],
        capture_output=True, text=True, timeout=300,
        env={**__import__("os").environ, "ASSISTANT_ABSTAIN_THRESHOLD": "1",
             "ASSISTANT_RELATED_THRESHOLD": "0", "ASSISTANT_MODE": "extractive"},
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "The documents do not say."
    at = lines.index("Related passages (not an answer):")
    assert "harbour.txt [" in lines[at + 1] and "1874" in "\n".join(lines[at:])


def test_a_first_line_standing_alone_is_the_title_not_a_sentence() -> None:
    title = ("Peat-free moss biofilters reduce nitrate run-off from upland sheep pasture in "
             "two wet seasons: a field trial")
    doc = parse_document(f"{title}\n\nWe installed 24 biofilters. They worked.\n")
    assert doc.title == title
    assert [s.text for s in doc.sentences] == ["We installed 24 biofilters.", "They worked."]
    # a first line that ends a sentence is text, not a title
    prose = parse_document("We installed 24 biofilters on the estate in April.\n\nMore.\n")
    assert prose.sentences[0].text.startswith("We installed")
