"""Fit the ranking and answerability weights on SQuAD 2.0 train: `python evals/fit_weights.py`.

    python evals/fit_weights.py [--squad /work/data/squad-train-v2.0-first10.json] [--max N]

Never on our eval sets: the weights come from a public dataset's *train* split (provenance in
docs/evaluation.md, "Fitted weights"). Each SQuAD article becomes a document (title line, then
its paragraphs), the articles are ingested into one index with the project's own pipeline
(splitter, MiniLM encoder, BM25), and every question is retrieved and scored exactly as
`assistant ask` does; the signals of each candidate sentence (extractive.signals) are the
features. Three logistic models are fitted (numpy, L2-regularised Newton steps):

- `rank`: does this sentence hold the answer? (candidates of answerable questions);
- `answer`: is the top-ranked sentence, ranked by `rank`, a right answer? (every question; a
  question SQuAD marks unanswerable is never answered right), with the margin over the second;
- `relevance`: is the question answerable at all from what was retrieved (LLM mode's gate,
  relevance signals only).

Writes assistant/answering/weights.json and prints each model's weights and train log-loss.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from assistant import Assistant
from assistant.answering.answerability import RELEVANCE_SIGNALS, WEIGHTS_FILE, load_weights

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_SQUAD = Path("/work/data/squad-train-v2.0-first10.json")
L2 = 1.0  # ridge penalty on the standardised weights (not on the bias)


def write_articles(squad: dict, folder: Path, limit: int | None) -> list[dict]:
    """One text file per article; each question with the file and its answers' spans in it."""
    questions = []
    for n, article in enumerate(squad["data"]):
        title = article["title"].replace("_", " ")
        parts, pos = [title, ""], len(title) + 2
        name = f"{n:02d}.txt"
        for para in article["paragraphs"]:
            context = para["context"].replace("\n", " ")
            for qa in para["qas"]:
                spans = [(pos + a["answer_start"], pos + a["answer_start"] + len(a["text"]))
                         for a in qa.get("answers", [])]
                questions.append({"question": qa["question"], "source": name, "spans": spans,
                                  "answerable": not qa.get("is_impossible", False)})
            parts += [context, ""]
            pos += len(context) + 2
        (folder / name).write_text("\n".join(parts), encoding="utf-8")
    if limit:
        questions = questions[:: max(1, len(questions) // limit)][:limit]
    return questions


def holds(evs: list, source: str, spans: list[tuple[int, int]]) -> bool:
    return any(e.source == source and e.start <= a and b <= e.end for e in evs for a, b in spans)


def fit(
    x: np.ndarray, y: np.ndarray, names: list[str], sw: np.ndarray | None = None
) -> tuple[float, dict[str, float], float]:
    """Logistic regression by Newton steps on standardised features (`sw`: sample weights);
    weights in raw units."""
    sw = np.ones(len(y)) if sw is None else sw
    mu, sd = x.mean(0), x.std(0)
    sd[sd == 0] = 1.0
    z = np.hstack([np.ones((len(x), 1)), (x - mu) / sd])
    w = np.zeros(z.shape[1])
    reg = np.full(z.shape[1], L2)
    reg[0] = 0.0
    for _ in range(50):
        p = 1 / (1 + np.exp(-(z @ w)))
        grad = z.T @ (sw * (p - y)) + reg * w
        hess = (z * (sw * p * (1 - p))[:, None]).T @ z + np.diag(reg) + 1e-9 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    p = np.clip(1 / (1 + np.exp(-(z @ w))), 1e-9, 1 - 1e-9)
    loss = float(-np.average(y * np.log(p) + (1 - y) * np.log(1 - p), weights=sw))
    raw = w[1:] / sd
    bias = float(w[0] - (raw * mu).sum())
    return bias, {n: round(float(v), 4) for n, v in zip(names, raw, strict=True)}, loss


def fit_listwise(groups: list[tuple[np.ndarray, int]], names: list[str]) -> dict[str, float]:
    """Ranking weights by conditional (softmax) likelihood of each question's answer sentence
    among its candidates: what a ranking needs is the right sentence first, not calibrated
    probabilities. Newton steps on standardised features, L2 as in `fit`."""
    allx = np.vstack([x for x, _ in groups])
    mu, sd = allx.mean(0), allx.std(0)
    sd[sd == 0] = 1.0
    zs = [((x - mu) / sd, g) for x, g in groups]
    w = np.zeros(len(names))
    for _ in range(50):
        grad, hess = L2 * w, L2 * np.eye(len(w))
        for z, g in zs:
            s = z @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            mean = p @ z
            grad -= z[g] - mean
            hess += (z * p[:, None]).T @ z - np.outer(mean, mean)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return {n: round(float(v), 4) for n, v in zip(names, w / sd, strict=True)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--squad", type=Path, default=DEFAULT_SQUAD)
    ap.add_argument("--max", type=int, default=None, help="use at most N questions (spread out)")
    ap.add_argument("--out", type=Path, default=WEIGHTS_FILE)
    args = ap.parse_args()
    raw = args.squad.read_bytes()
    squad = json.loads(raw)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        seeds, index = Path(tmp) / "seeds", Path(tmp) / "index"
        seeds.mkdir()
        questions = write_articles(squad, seeds, args.max)
        a = Assistant(seeds_dir=seeds, index_dir=index, mode="extractive")
        a.ingest()
        engine = a._ensure_engine()
        answerer = engine.answerer
        rows = []  # (question, candidates, labels)
        for q in questions:
            retrieval = engine.retriever.retrieve(q["question"])
            cands = answerer.candidates(q["question"], retrieval.question_tokens,
                                        retrieval.evidence)
            labels = [q["answerable"] and holds([c.evidence, *c.extra], q["source"], q["spans"])
                      for c in cands]
            rows.append((q, cands, labels))
    print(f"{len(rows)} questions ({sum(q['answerable'] for q, _, _ in rows)} answerable) "
          f"scored in {time.perf_counter() - t0:.0f} s")
    names = sorted({k for _, cands, _ in rows for c in cands for k in c.signals} | {"bridged"})

    def matrix(cands: list, keys: list[str], extra: list[dict] | None = None) -> np.ndarray:
        return np.array([[{**c.signals, **(extra[i] if extra else {})}.get(k, 0.0) for k in keys]
                         for i, c in enumerate(cands)], dtype=float)

    # rank: each answerable question whose answer sentence was retrieved, its candidates
    # A bridged pair is ranked as the sentence it starts from, less nothing: it replaces that
    # sentence when the other holds the asked-for kind of answer (its weight stays 0; fitted, it
    # diverges, since a pair and its first sentence share their label).
    plain = [k for k in names if k != "bridged"]
    groups = []
    for q, cands, labels in rows:
        keep = [i for i, c in enumerate(cands) if not c.extra]
        labels_kept = [labels[i] for i in keep]
        if q["answerable"] and any(labels_kept):
            groups.append((matrix([cands[i] for i in keep], plain), labels_kept.index(True)))
    rank_w = {**fit_listwise(groups, plain), "bridged": 0.0}
    rank = (0.0, rank_w, 0.0)
    top1 = np.mean([int(np.argmax(x @ np.array([rank_w[k] for k in plain]))) == g
                    for x, g in groups])
    print(f"rank: {len(groups)} questions, answer sentence first for {top1:.3f}")

    # answer: the top sentence by the fitted ranking, and its margin over the second
    ax, ay, vx, vy, un = [], [], [], [], []
    answer_names = [*names, "margin"]
    for q, cands, labels in rows:
        if not cands:
            continue
        scores = [rank[0] + sum(rank_w[k] * c.signals.get(k, 0.0) for k in names) for c in cands]
        # the order `candidates` gives: a sentence failing a strict answer kind goes last
        order = sorted(range(len(cands)),
                       key=lambda i: (cands[i].signals["type_missing_strict"] > 0, -scores[i]))
        top = order[0]
        margin = min(scores[top] - (scores[order[1]] if len(order) > 1 else scores[top] - 4), 4)
        ax.append([cands[top].signals.get(k, 0.0) for k in names] + [margin])
        ay.append(float(labels[top]))
        vx.append([cands[top].signals.get(k, 0.0) for k in RELEVANCE_SIGNALS])
        vy.append(float(q["answerable"]))
        un.append(not q["answerable"])
    # SQuAD's train set is 1 in 3 unanswerable, its first articles far fewer; weigh the
    # unanswerable questions so the two kinds count alike, as a product meets both
    un_arr = np.array(un)
    sw = np.where(un_arr, (~un_arr).sum() / max(un_arr.sum(), 1), 1.0)
    answer = fit(np.array(ax), np.array(ay), answer_names, sw)
    print(f"answer: {len(ay)} questions ({int(sum(ay))} right at rank 1), log-loss {answer[2]:.4f}")
    relevance = fit(np.array(vx), np.array(vy), list(RELEVANCE_SIGNALS), sw)
    print(f"relevance: {len(vy)} questions, log-loss {relevance[2]:.4f}")

    out = {
        "fitted_on": {
            "dataset": "SQuAD 2.0 train (CC BY-SA 4.0), the file named below",
            "file": args.squad.name,
            "sha256": hashlib.sha256(raw).hexdigest(),
            "questions": len(rows),
            "script": "evals/fit_weights.py",
        },
        "rank": {"bias": round(rank[0], 4), "weights": rank[1]},
        "answer": {"bias": round(answer[0], 4), "weights": answer[1]},
        "relevance": {"bias": round(relevance[0], 4), "weights": relevance[1]},
    }
    args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
    load_weights.cache_clear()
    for label, m in (("rank", rank), ("answer", answer), ("relevance", relevance)):
        print(f"{label:9s} bias {m[0]:+.3f} " + " ".join(f"{k}={v:+.3f}" for k, v in m[1].items()))
    print(f"weights written to {args.out} in {time.perf_counter() - t0:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
