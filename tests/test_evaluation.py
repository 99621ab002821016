import json
import re
from pathlib import Path
from typing import Any

import pytest

from assistant import Assistant
from assistant.answering.extractive import ABSTAIN_TEXT
from assistant.answering.retrieve import HybridRetriever, Retrieval
from assistant.errors import BadInputError
from assistant.evaluation.harness import (
    HELD_OUT,
    aggregate,
    baseline_of,
    case_diff,
    compare,
    dump_baseline,
    gate,
    load_cases,
    load_sets,
    normalize,
    pooled,
    risk_coverage,
    run_cli,
    split_figures,
    token_f1,
)
from assistant.evaluation.report import (
    markdown_report,
    risk_coverage_path,
    write_plot,
    write_risk_coverage_plot,
)
from assistant.indexing.lexical import tokenize
from assistant.interfaces.cli import build_parser

ROOT = Path(__file__).resolve().parent.parent


def test_normalize_and_token_f1_squad_style_punctuation_as_space() -> None:
    assert normalize("The U.S.  top-trade partner!") == "u s top trade partner"
    # any Unicode punctuation: an en dash retyped as a hyphen, curly quotes as straight ones
    assert normalize("within 5–10 working days") == normalize("within 5-10 working days")
    assert normalize("“Wool and Water” … don’t") == normalize('"Wool and Water" ... don\'t')
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


def _result(cid: str, passed: bool, correct: bool, answer: str = "a") -> dict:
    return {
        "id": cid,
        "question": "q",
        "expected": ["a"],
        "answer": answer,
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


def _report(results: list[dict], name: str = "s", mode: str = "extractive") -> dict:
    by_tag = {"factoid": aggregate(results)}
    return {
        "set": name,
        "mode": mode,
        "overall": aggregate(results),
        "by_tag": by_tag,
        "results": results,
    }


def test_baseline_records_each_case_verdict_and_answer_without_latency() -> None:
    rep = _report([_result("c1", True, True, "Leeds [1]"), _result("c2", False, False)])
    base = baseline_of([rep])
    assert base["mode"] == "extractive"
    assert base["sets"]["s"]["cases"] == {
        "c1": {"passed": True, "answer": "Leeds [1]"},
        "c2": {"passed": False, "answer": "a"},
    }
    assert "latency" not in json.dumps(base)
    assert json.dumps(baseline_of([rep])) == json.dumps(base)  # deterministic


def test_baseline_file_has_one_line_per_case_and_reads_back_unchanged() -> None:
    rep = _report([_result("c1", True, True, 'He said "no" [1]'), _result("c2", False, False)])
    base = baseline_of([rep])
    text = dump_baseline(base)
    assert json.loads(text) == base
    lines = [line.strip() for line in text.splitlines()]
    assert '"c1": {"passed": true, "answer": "He said \\"no\\" [1]"},' in lines
    assert '"c2": {"passed": false, "answer": "a"}' in lines


def test_baseline_update_of_one_set_keeps_the_other_sets() -> None:
    old = baseline_of(
        [_report([_result("a1", True, True)], "a"), _report([_result("b1", True, True)], "b")]
    )
    new = baseline_of([_report([_result("a1", False, False)], "a")], old)
    assert new["sets"]["b"] == old["sets"]["b"]
    assert new["sets"]["a"]["cases"]["a1"]["passed"] is False


def test_case_diff_shows_regressed_and_fixed_cases_with_both_answers() -> None:
    base = baseline_of(
        [
            _report(
                [
                    _result("c1", True, True, "Leeds [1]"),
                    _result("c2", False, False, "The documents do not say."),
                ]
            )
        ]
    )
    now = _report(
        [
            _result("c1", False, False, "The documents do not say."),
            _result("c2", True, True, "Thursday [1]"),
            _result("c3", True, True),
        ]
    )
    diff = case_diff(now, base["sets"]["s"])
    assert [(c["id"], c["was"], c["now"], c["why"]) for c in diff["regressed"]] == [
        ("c1", "Leeds [1]", "The documents do not say.", ["abstained"])
    ]
    assert [(c["id"], c["was"], c["now"]) for c in diff["fixed"]] == [
        ("c2", "The documents do not say.", "Thursday [1]")
    ]
    assert diff["new"] == ["c3"]


def test_gate_reads_a_baseline_that_lists_only_passing_ids() -> None:
    old_format = {"sets": {"s": {"overall": {}, "passed": ["c1"]}}}
    problems = compare([_report([_result("c1", False, False)])], old_format)
    assert problems == ["s: c1 regressed: 'q' -> 'a'"]


def test_gate_refuses_a_baseline_recorded_in_another_mode() -> None:
    base = baseline_of([_report([_result("c1", True, True)])])
    problems = compare([{**_report([_result("c1", True, True)], mode="llm"), "model": "m1"}], base)
    assert len(problems) == 1
    assert "recorded in extractive mode, this run is llm mode, model m1" in problems[0]
    assert "--baseline evals/baseline-<model>.json" in problems[0]


def test_sets_file_paths_resolve_against_the_project_root(tmp_path: Path) -> None:
    (tmp_path / "evals").mkdir()
    sets_file = tmp_path / "evals" / "sets.json"
    corpus = tmp_path / "elsewhere"
    sets_file.write_text(json.dumps({"t": {"cases": "evals/t.jsonl", "corpus": str(corpus)}}))
    assert load_sets(sets_file) == {
        "t": {"cases": tmp_path / "evals" / "t.jsonl", "corpus": corpus}
    }
    sets_file.write_text(json.dumps({"t": {"cases": "evals/t.jsonl"}}))
    with pytest.raises(BadInputError, match='needs a "cases" file and a "corpus" folder'):
        load_sets(sets_file)


def test_plot_writes_the_same_png_for_the_same_figures(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    reps = [
        _report([_result("c1", True, True), _result("c2", False, False)], name)
        for name in ("seed", "encyclopedia")
    ]
    write_plot(reps, tmp_path / "a.png")
    write_plot(reps, tmp_path / "b.png")
    png = (tmp_path / "a.png").read_bytes()
    assert png.startswith(b"\x89PNG") and png == (tmp_path / "b.png").read_bytes()


def test_report_of_a_passing_run_has_the_tables_and_no_failure_section() -> None:
    rep = _report([_result("c1", True, True)])
    text = markdown_report(
        [rep], problems=[], changes=[], diffs={}, notes=[], baseline_label="evals/baseline.json"
    )
    assert "gate: passed" in text and "Why the gate failed" not in text
    assert "| set | cases | correct | answer F1 | evidence hit | evidence F1 |" in text
    assert "### s: metrics per tag" in text and "| factoid | 1 |" in text


def test_report_cuts_long_answers_but_not_before_they_differ() -> None:
    long = "Gen. Li said the relationship has been strengthening " * 8
    base = baseline_of([_report([_result("c1", True, True, long + "fraternal. [1]")])])
    now = _report([_result("c1", False, False, long + "close. [1]")])
    text = markdown_report(
        [now],
        problems=["s: c1 regressed"],
        changes=[],
        diffs={"s": case_diff(now, base["sets"]["s"])},
        notes=[],
        baseline_label="evals/baseline.json",
    )
    assert "gate: **FAILED**" in text
    assert "  - was: " + long.strip() + " fraternal. [1]" in text
    assert "  - now: " + long.strip() + " close. [1]" in text


# -- the real harness on a tiny corpus, with a deliberately broken retriever ----------------------
FERRY = (
    "The Millbridge Ferry\n\nThe Millbridge ferry began service in 1887. It carried passengers "
    "across the river Aske to the market town of Ostwick.\nThe ferry was replaced by a stone "
    "bridge in 1923. The bridge was designed by the engineer Harriet Coles.\nHarriet Coles was "
    "born in Leeds in 1881. She later designed the Kelby viaduct.\n"
)
MARKET = (
    "Ostwick Market\n\nOstwick market opens every Thursday. Its main trade is wool and cheese.\n"
    "The market hall burned down in 1911 and was rebuilt two years later.\n"
)
TINY_CASES = [
    (
        "t-1",
        "When did the Millbridge ferry begin service?",
        ["1887"],
        "The Millbridge ferry began service in 1887.",
        ["temporal"],
        True,
    ),
    (
        "t-2",
        "Who designed the stone bridge?",
        ["Harriet Coles"],
        "The bridge was designed by the engineer Harriet Coles.",
        ["factoid"],
        True,
    ),
    (
        "t-3",
        "Where was Harriet Coles born?",
        ["Leeds"],
        "Harriet Coles was born in Leeds in 1881.",
        ["factoid"],
        False,
    ),
    (
        "t-4",
        "On which day of the week does Ostwick market open?",
        ["Thursday"],
        "Ostwick market opens every Thursday.",
        ["factoid"],
        False,
    ),
    (
        "t-5",
        "In what year did the market hall burn down?",
        ["1911"],
        "The market hall burned down in 1911",
        ["temporal", "numeric"],
        False,
    ),
    ("t-6", "What is the boiling point of mercury in kelvin?", [], None, ["unanswerable"], False),
]


def _tiny_eval(tmp_path: Path) -> Path:
    """Two short documents, six cases and a sets file, laid out like the project's `evals/`."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "ferry.txt").write_text(FERRY, encoding="utf-8")
    (corpus / "market.txt").write_text(MARKET, encoding="utf-8")
    (tmp_path / "evals").mkdir()
    rows = [
        {
            "id": cid,
            "question": q,
            "answerable": bool(gold),
            "acceptable_answers": gold,
            "evidence": [ev] if ev else [],
            "tags": tags,
            "must_pass": must,
        }
        for cid, q, gold, ev, tags, must in TINY_CASES
    ]
    cases = tmp_path / "evals" / "tiny.jsonl"
    cases.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    sets_file = tmp_path / "evals" / "sets.json"
    sets_file.write_text(json.dumps({"tiny": {"cases": "evals/tiny.jsonl", "corpus": "corpus"}}))
    return sets_file


class _FindsNothing(HybridRetriever):
    """The deliberately broken change: retrieval returns no chunks and no evidence."""

    def retrieve(self, question: str, search_text: str | None = None) -> Retrieval:
        return Retrieval(tokenize(search_text or question), [], [])


class _BrokenRetrievalAssistant(Assistant):
    """The real assistant, except that its engine retrieves with `_FindsNothing`."""

    def _ensure_engine(self) -> Any:
        engine = super()._ensure_engine()
        r = engine.retriever
        if not isinstance(r, _FindsNothing):
            engine.retriever = _FindsNothing(r.side, r.lexical, r.store, r.encoder)
        return engine


def _eval(argv: list[str], encoder: Any, **kwargs: Any) -> int:
    return run_cli(
        build_parser().parse_args(["eval", "--mode", "extractive", *argv]),
        encoder=encoder,
        **kwargs,
    )


@pytest.mark.slow
def test_gate_fails_with_a_readable_report_when_retrieval_returns_nothing(
    tmp_path: Path, encoder: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    sets_file = _tiny_eval(tmp_path)
    args = ["--sets-file", str(sets_file)]
    assert _eval([*args, "--update-baseline"], encoder) == 0
    baseline = json.loads((tmp_path / "evals" / "baseline.json").read_text(encoding="utf-8"))
    cases = baseline["sets"]["tiny"]["cases"]
    passed = [cid for cid, c in cases.items() if c["passed"] and cid != "t-6"]
    assert {"t-1", "t-2"} <= set(passed)  # the must_pass cases pass with the real retriever
    assert _eval(args, encoder) == 0  # the unchanged code passes against its own baseline
    capsys.readouterr()

    report = tmp_path / "report.md"
    code = _eval(
        [*args, "--report-md", str(report)], encoder, assistant_factory=_BrokenRetrievalAssistant
    )

    assert code == 7
    out, err = capsys.readouterr()
    assert "EVAL GATE FAILED" in err and "tiny: must_pass case t-1 failed" in err
    assert f"tiny: {len(passed)} regressed" in out
    text = report.read_text(encoding="utf-8")
    assert text.startswith("# Eval report\n\nMode: extractive")
    assert "gate: **FAILED**" in text
    why = text.split("## Why the gate failed")[1].split("## Overall")[0]
    assert "tiny: must_pass case t-1 failed" in why
    assert "tiny: answer_correctness fell from" in why
    assert f"tiny: {len(passed)} case(s) that passed in the baseline fail now" in why
    regressed = text.split("Regressed (passed in the baseline, fail now):")[1].split("\n\n")[1]
    for cid in passed:
        question = next(q for i, q, *_ in TINY_CASES if i == cid)
        assert f"**{cid}**" in regressed and question in regressed
        assert f"was: {cases[cid]['answer']}" in regressed
    assert regressed.count(f"now: {ABSTAIN_TEXT}") == len(passed)
    assert regressed.count("fails because: abstained") == len(passed)
    assert re.search(
        r"\| tiny \| answer_correctness \| [0-9.]+ \| 0\.000 \| -[0-9.]+ \| -0\.02 \| "
        r"\*\*REGRESSED\*\* \|",
        text,
    )


def test_evidence_is_found_across_the_line_breaks_of_pdf_text() -> None:
    from assistant.evaluation.harness import find_evidence

    text = "Quarter Availability\n\nQ1 2025\n99.96% 118\n\nQ2 2025 99.94% 97\n"
    start, end = find_evidence(text, "Q1 2025 99.96% 118")
    assert text[start:end] == "Q1 2025\n99.96% 118"
    assert find_evidence(text, "Q2 2025 99.94%") == (text.index("Q2"), text.index("% 97") + 1)
    assert find_evidence(text, "Q3 2025 99.97%") is None


def _split_report(results: list[dict], name: str = "s") -> dict:
    return {**_report(results, name), **split_figures(results)}


def test_each_split_is_aggregated_and_gated_and_the_baseline_records_both() -> None:
    dev = [{**_result(f"d{i}", True, True), "split": "dev"} for i in range(10)]
    test = [{**_result(f"t{i}", True, True), "split": "test"} for i in range(10)]
    rep = _split_report(dev + test)
    assert set(rep["splits"]) == {"dev", "test"} and rep["splits"]["test"]["cases"] == 10
    base = baseline_of([rep])
    assert set(base["sets"]["s"]["splits"]) == {"dev", "test"}
    assert set(base["sets"]["s"]["aurc"]) == {"all", "dev", "test"}
    # three test cases lost: the whole set falls by 0.15, the test split by 0.3
    worse = dev + [{**_result(f"t{i}", i > 2, i > 2), "split": "test"} for i in range(10)]
    problems = compare([_split_report(worse)], base)
    assert any(p.startswith("s (test): answer_correctness fell from 1 to 0.7") for p in problems)
    assert not any(p.startswith("s (dev):") for p in problems)
    both = pooled([_split_report(dev + test, "a"), _split_report(worse, "b")])
    assert both["splits"]["test"]["cases"] == 20 and both["set"] == "pooled"


def test_a_regressed_test_case_is_named_by_its_id_only_unless_asked() -> None:
    def case(cid: str, split: str, passed: bool) -> dict:
        return {**_result(cid, passed, passed, "Leeds [1]" if passed else "Paris [1]"),
                "question": f"Where is {cid}?", "split": split}

    base = baseline_of([_split_report([case("d1", "dev", True), case("t1", "test", True)])])
    now = _split_report([case("d1", "dev", False), case("t1", "test", False)])
    problems = gate([now], base)
    assert "s: d1 regressed: 'Where is d1?' -> 'Paris [1]'" in problems
    held = [p for p in problems if "t1" in p]
    assert held == [f"s: t1 regressed {HELD_OUT}"]
    diff = case_diff(now, base["sets"]["s"])
    (hidden,) = [c for c in diff["regressed"] if c["id"] == "t1"]
    assert hidden["hidden"] and "Where is t1" not in json.dumps(hidden)
    assert "Paris" not in json.dumps(hidden) and "Leeds" not in json.dumps(hidden)
    report = markdown_report([now], problems=problems, changes=[], diffs={"s": diff}, notes=[],
                             baseline_label="b.json")
    assert "Where is d1?" in report and "Where is t1?" not in report
    # asked for (--show-test-cases): the test case is shown like any other
    shown = gate([now], base, show_test=True)
    assert "s: t1 regressed: 'Where is t1?' -> 'Paris [1]'" in shown
    must = {**case("t2", "test", False), "must_pass": True}
    assert gate([_split_report([must])], None) == [f"s: must_pass case t2 failed {HELD_OUT}"]


def test_risk_coverage_takes_the_most_confident_first_and_its_area_is_the_mean_risk() -> None:
    def case(conf: float, right: bool) -> dict:
        return {"confidence": conf, "candidate_correct": right}

    rc = risk_coverage([case(0.9, True), case(0.2, False), case(0.5, True), case(0.7, False)])
    assert rc["curve"] == [(0.25, 0.0), (0.5, 0.5), (0.75, 0.3333), (1.0, 0.5)]
    assert rc["aurc"] == round((0 + 0.5 + 0.3333 + 0.5) / 4, 4)
    # a perfect ordering (every right answer more confident than every wrong one) scores lower
    ordered = risk_coverage([case(0.9, True), case(0.7, True), case(0.5, False), case(0.2, False)])
    assert ordered["aurc"] < rc["aurc"]


def test_a_case_with_a_split_other_than_dev_or_test_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "d.txt").write_text("Leeds is a city.\n", encoding="utf-8")
    case = {"id": "x1", "question": "q?", "answerable": True, "acceptable_answers": ["Leeds"],
            "evidence": ["Leeds is a city."], "tags": ["factoid"], "must_pass": False}
    good = tmp_path / "good.jsonl"
    good.write_text(json.dumps(case) + "\n", encoding="utf-8")
    assert load_cases(good, tmp_path / "corpus")[0]["split"] == "dev"  # no split: dev
    bad = tmp_path / "bad.jsonl"
    bad.write_text(json.dumps({**case, "split": "train"}) + "\n", encoding="utf-8")
    with pytest.raises(BadInputError, match="neither dev nor test"):
        load_cases(bad, tmp_path / "corpus")


def test_an_evidence_quote_matches_across_line_breaks_of_a_table_row(tmp_path: Path) -> None:
    (tmp_path / "corpus").mkdir()
    (tmp_path / "corpus" / "d.txt").write_text("Q1 2025\n99.9%\n118\n", encoding="utf-8")
    case = {"id": "x1", "question": "q?", "answerable": True, "acceptable_answers": ["118"],
            "evidence": ["Q1 2025 99.9% 118"], "tags": ["factoid"], "must_pass": False}
    path = tmp_path / "c.jsonl"
    path.write_text(json.dumps(case) + "\n", encoding="utf-8")
    assert load_cases(path, tmp_path / "corpus")[0]["gold_spans"] == [("d.txt", 0, 17)]


def test_risk_coverage_plot_is_a_png_next_to_the_plot(tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    rows = [{**_result(f"c{i}", True, i % 2 == 0), "split": "test", "confidence": i / 10,
             "candidate_correct": i % 2 == 0} for i in range(6)]
    path = risk_coverage_path(tmp_path / "eval.png")
    assert path.name == "eval-risk-coverage.png"
    write_risk_coverage_plot([_split_report(rows)], path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
