"""Answer or abstain: one decision over a question's ranked evidence, shared by both modes.

The signals of a candidate sentence (similarity, word coverage, answer-type and name checks,
the margin over the next sentence, ...) are combined by two logistic models whose weights were
fitted on a public QA dataset's train split (SQuAD 2.0, `evals/fit_weights.py`), never on our
eval sets: `rank` orders the sentences, `answer` gives the probability that quoting the chosen
one answers the question. `decide` compares that probability to the mode's threshold and keeps
each signal's contribution as the decision's reasons (the answer's trace shows them).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

WEIGHTS_FILE = Path(__file__).with_name("weights.json")
MODES = ("extractive", "llm")
# The signals LLM mode reads: whether the retrieved passages bear on the question at all. The
# model composes and computes, so a sentence without a number of the asked kind is no reason
# to withhold the passages from it. Related passages are chosen by the same model.
RELEVANCE_SIGNALS = ("cosine", "focus_missing")


@dataclass(frozen=True)
class Model:
    """A logistic model: `bias + sum(weight * signal)`; a signal it does not know counts 0."""

    bias: float
    weights: dict[str, float]

    def logit(self, signals: dict[str, float], only: tuple[str, ...] | None = None) -> float:
        return self.bias + sum(
            w * signals.get(name, 0.0)
            for name, w in self.weights.items()
            if only is None or name in only
        )

    def contributions(self, signals: dict[str, float]) -> dict[str, float]:
        """Each signal's share of the logit (weight × value; signals that add nothing are left
        out), the bias included."""
        out = {"bias": round(self.bias, 4)}
        out.update(
            {n: round(w * signals[n], 4) for n, w in self.weights.items() if w * signals.get(n, 0)}
        )
        return out


@dataclass(frozen=True)
class Weights:
    rank: Model
    answer: Model
    relevance: Model  # the LLM mode's gate: relevance signals only, fitted on their own
    off: frozenset[str] = frozenset()  # signals switched off (evals/ablate.py)

    def without(self, names: set[str]) -> Weights:
        """The same models with `names` switched off (their weights 0): for ablations."""

        def drop(m: Model) -> Model:
            return Model(m.bias, {n: (0.0 if n in names else w) for n, w in m.weights.items()})

        return Weights(drop(self.rank), drop(self.answer), drop(self.relevance),
                       self.off | frozenset(names))


def _model(raw: dict[str, Any]) -> Model:
    return Model(float(raw["bias"]), {k: float(v) for k, v in raw["weights"].items()})


@lru_cache(maxsize=4)
def load_weights(path: Path = WEIGHTS_FILE) -> Weights:
    """The fitted weights (`weights.json`, written by evals/fit_weights.py)."""
    raw = json.loads(path.read_text(encoding="utf-8"))
    return Weights(_model(raw["rank"]), _model(raw["answer"]), _model(raw["relevance"]))


def sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, x))))


@dataclass
class Candidate:
    """A span the answer could quote, with its signals and its ranking score."""

    evidence: Any  # retrieve.Evidence (the first sentence of the span)
    signals: dict[str, float]
    rank: float = 0.0
    extra: tuple[Any, ...] = ()  # a bridged answer's second sentence


@dataclass(frozen=True)
class Decision:
    """Answer or abstain, the confidence it rests on, and why."""

    answer: bool
    confidence: float  # estimated probability that the chosen candidate answers the question
    threshold: float
    mode: str
    reasons: dict[str, float] = field(default_factory=dict)  # signal -> contribution to the logit
    candidate: Candidate | None = None

    def to_trace(self) -> dict[str, Any]:
        return {"decision": "answer" if self.answer else "abstain", "mode": self.mode,
                "confidence": round(self.confidence, 4), "threshold": self.threshold,
                "reasons": self.reasons}


def decide(
    question: str,
    evidence: list[Candidate],
    *,
    mode: str,
    threshold: float,
    weights: Weights | None = None,
) -> Decision:
    """Whether to answer `question` from `evidence` (candidates ranked best first).

    - `mode="extractive"`: the best candidate is quoted as the answer, so every signal counts
      (`answer` model, with the margin over the second candidate);
    - `mode="llm"`: the model reads the passages and writes the answer, so only whether they bear
      on the question counts (`relevance` model over `RELEVANCE_SIGNALS`, best candidate).

    `question` is kept for the reasons' sake (and for checks that read it in future); the signals
    already hold what the checks read from it.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, not {mode!r}")
    w = weights or load_weights()
    if not evidence:
        return Decision(False, 0.0, threshold, mode, {"no_evidence": 1.0})
    best = evidence[0]
    signals = dict(best.signals)
    if mode == "llm":
        model = w.relevance
        signals = {k: v for k, v in signals.items() if k in RELEVANCE_SIGNALS}
    else:
        model = w.answer
        second = evidence[1].rank if len(evidence) > 1 else best.rank - 4.0
        signals["margin"] = min(best.rank - second, 4.0)
    p = sigmoid(model.logit(signals))
    return Decision(p >= threshold, p, threshold, mode, model.contributions(signals), best)


def confidence_of(candidate: Candidate, weights: Weights | None = None) -> float:
    """A candidate's own probability of answering (for a second quoted sentence)."""
    w = weights or load_weights()
    return sigmoid(w.answer.logit(candidate.signals))


def relevance_of(candidate: Candidate, weights: Weights | None = None) -> float:
    """How far a candidate bears on the question at all (the relevance model, LLM mode's gate)."""
    w = weights or load_weights()
    return sigmoid(w.relevance.logit(candidate.signals, RELEVANCE_SIGNALS))
