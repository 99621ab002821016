"""Render eval results: Markdown tables, the report with the diff against the baseline, a PNG plot.

Pure rendering: the figures, the gate's verdict and the case diff are computed in `evaluation`.
matplotlib (the optional `eval` extra) is imported only inside `write_plot`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

# Column label of each metric shown in the tables (the keys are the names in the JSON files).
COLUMNS = {
    "answer_correctness": "correct",
    "answer_f1": "answer F1",
    "evidence_hit": "evidence hit",
    "evidence_char_f1": "evidence F1",
    "citation_validity": "citations valid",
    "abstention_recall": "abstention recall",
    "false_refusal": "false refusal",
    "mean_chars_cited": "chars cited",
    "retrieval_hit@3": "hit@3",
    "retrieval_mrr": "MRR",
    "latency_p50_ms": "p50 ms",
    "latency_p95_ms": "p95 ms",
}
# The bars of the plot: (metric, label, colour).
PLOTTED = [
    ("answer_correctness", "correctness", "tab:blue"),
    ("evidence_hit", "evidence hit", "tab:green"),
    ("abstention_recall", "abstention recall", "tab:orange"),
]
ANSWER_CHARS = 240  # answers longer than this are cut in the report


def fmt(metric: str, value: Any) -> str:
    """A figure as shown in the tables: ratios to 3 places, characters and ms to 1, n/a as -."""
    if value is None:
        return "-"
    if isinstance(value, int):
        return str(value)
    if metric.endswith("_ms") or metric.startswith("mean_chars"):
        return f"{value:.1f}"
    return f"{value:.3f}"


def metrics_table(
    first: str, rows: list[tuple[str, dict[str, Any]]], extra: dict[str, str] | None = None
) -> str:
    """A Markdown table: one row per (name, aggregate), the case count, then `COLUMNS`
    (and the `extra` columns)."""
    columns = {**COLUMNS, **(extra or {})}
    lines = [
        f"| {first} | cases | " + " | ".join(columns.values()) + " |",
        "|---|" + "---:|" * (len(columns) + 1),
    ]
    for name, agg in rows:
        cells = [fmt(m, agg.get(m)) for m in columns]
        lines.append(f"| {name} | {agg['cases']} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def overall_table(reports: list[dict[str, Any]]) -> str:
    return metrics_table("set", [(rep["set"], rep["overall"]) for rep in reports])


def split_table(reports: list[dict[str, Any]], pooled: dict[str, Any] | None = None) -> str:
    """Dev and test of each set (and of all sets pooled), with the area under the risk-coverage
    curve (AURC, lower is better). Only the test splits of sets nobody tuned on are held out."""
    rows = []
    for rep in [*reports, *([pooled] if pooled else [])]:
        for split, agg in rep.get("splits", {}).items():
            aurc = rep.get("selective", {}).get(split, {}).get("aurc")
            rows.append((f"{rep['set']} ({split})", {**agg, "aurc": aurc}))
    table = metrics_table("set (split)", rows, extra={"aurc": "AURC"})
    return "### Dev and test splits\n\n" + table


def tag_tables(reports: list[dict[str, Any]], level: str = "###") -> str:
    """One per-tag table for each set, under a heading naming the set."""
    parts = []
    for rep in reports:
        parts.append(f"{level} {rep['set']}: metrics per tag\n")
        parts.append(metrics_table("tag", list(rep["by_tag"].items())))
        parts.append("")
    return "\n".join(parts).rstrip()


def _cut(text: str | None, limit: int) -> str:
    if text is None:
        return "(not recorded in the baseline)"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _was_now(was: str | None, now: str) -> tuple[str, str]:
    """Both answers, cut where they still show how they differ (never to the same text)."""
    was_text = None if was is None else " ".join(was.split())
    now_text = " ".join(now.split())
    same = 0
    if was_text is not None:
        while same < min(len(was_text), len(now_text)) and was_text[same] == now_text[same]:
            same += 1
    limit = max(ANSWER_CHARS, same + 60)
    return _cut(was_text, limit), _cut(now_text, limit)


def _case_lines(case: dict[str, Any]) -> list[str]:
    flags = ", ".join(case["tags"] + (["must_pass"] if case["must_pass"] else []))
    lines = [f"- **{case['id']}** ({flags}): {case['question']}"]
    if case.get("hidden"):  # a held-out test case: its id only
        return lines
    if case["expected"]:
        lines.append("  - expected: " + " / ".join(case["expected"]))
    else:
        lines.append("  - expected: an abstention (the documents do not say)")
    if case["why"]:
        lines.append("  - fails because: " + "; ".join(case["why"]))
    was, now = _was_now(case["was"], case["now"])
    lines += [f"  - was: {was}", f"  - now: {now}"]
    return lines


def _changes_table(changes: list[dict[str, Any]]) -> str:
    lines = [
        "| set | metric | baseline | now | change | tolerated | |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for c in changes:
        change = c["now"] - c["was"]
        sign = "" if not c["tolerance"] else "-" if c["higher_is_better"] else "+"
        lines.append(
            f"| {c['set']} | {c['metric']} | {fmt(c['metric'], c['was'])} | "
            f"{fmt(c['metric'], c['now'])} | {change:+.3f} | {sign}{c['tolerance']:g} | "
            + ("ok" if c["ok"] else "**REGRESSED**")
            + " |"
        )
    return "\n".join(lines)


def markdown_report(
    reports: list[dict[str, Any]],
    *,
    problems: list[str],
    changes: list[dict[str, Any]],
    diffs: dict[str, dict[str, Any]],
    notes: list[str],
    baseline_label: str,
    updated: bool = False,
    pooled: dict[str, Any] | None = None,
) -> str:
    """The whole report: verdict, overall table, change against the baseline, cases, tag tables."""
    modes = sorted({rep.get("mode", "?") for rep in reports})
    if updated:
        verdict = "baseline updated (not gated)"
    elif problems:
        verdict = "**FAILED**"
    else:
        verdict = "passed"
    out = [
        "# Eval report",
        "",
        f"Mode: {', '.join(modes)} · baseline: `{baseline_label}` · gate: {verdict}",
        "",
    ]
    out += [f"> note: {n}" for n in notes]
    if notes:
        out.append("")
    if problems and not updated:
        out += ["## Why the gate failed", ""]
        out += [f"- {p}" for p in problems]
        out.append("")
    out += ["## Overall", "", overall_table(reports), "", split_table(reports, pooled), ""]
    if changes:
        out += ["## Gated metrics against the baseline", "", _changes_table(changes), ""]
    if diffs:
        out += ["## Cases against the baseline", ""]
        for name, d in diffs.items():
            out.append(
                f"### {name}: {len(d['regressed'])} regressed, {len(d['fixed'])} fixed, "
                f"{d['changed']} other answer(s) changed, {len(d['new'])} new case(s)"
            )
            out.append("")
            for title, key in (
                ("Regressed (passed in the baseline, fail now)", "regressed"),
                ("Fixed (failed in the baseline, pass now)", "fixed"),
            ):
                if d[key]:
                    out += [f"{title}:", ""]
                    for case in d[key]:
                        out += _case_lines(case)
                    out.append("")
            if d["new"]:
                out += ["New (not in the baseline): " + ", ".join(d["new"]), ""]
    out += ["## Metrics per tag", "", tag_tables(reports), ""]
    return "\n".join(out)


def write_plot(reports: list[dict[str, Any]], path: Path) -> None:
    """Grouped bars of correctness, evidence hit and abstention recall per tag, a panel per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = [[("all", rep["overall"]), *rep["by_tag"].items()] for rep in reports]
    width = max(6.0, 1.1 * max(len(g) for g in groups) + 1.5)
    fig, axes = plt.subplots(len(reports), 1, figsize=(width, 3.4 * len(reports)), squeeze=False)
    bar = 0.8 / len(PLOTTED)
    for ax, rep, group in zip(axes[:, 0], reports, groups, strict=True):
        for k, (metric, label, colour) in enumerate(PLOTTED):
            xs = [
                i + (k - (len(PLOTTED) - 1) / 2) * bar
                for i, (_, agg) in enumerate(group)
                if agg.get(metric) is not None
            ]
            ys = [agg[metric] for _, agg in group if agg.get(metric) is not None]
            bars = ax.bar(xs, ys, bar, label=label, color=colour)
            ax.bar_label(bars, fmt="%.2f", fontsize=6, padding=1)
        ax.set_xticks(range(len(group)))
        ax.set_xticklabels([f"{name}\n(n={agg['cases']})" for name, agg in group], fontsize=8)
        ax.set_ylim(0, 1.1)
        ax.set_yticks([0, 0.25, 0.5, 0.75, 1.0])
        ax.grid(axis="y", alpha=0.3)
        ax.set_axisbelow(True)
        ax.set_title(f"{rep['set']} ({rep.get('mode', '?')} mode)", fontsize=10, loc="left")
    axes[0, 0].legend(
        loc="upper center", bbox_to_anchor=(0.5, 1.28), ncol=len(PLOTTED), frameon=False, fontsize=8
    )
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    # No "Software" entry: the same figures give the same bytes, so the committed PNG diffs cleanly.
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def risk_coverage_path(plot: Path) -> Path:
    """Where `--plot out.png` puts the risk-coverage curves: `out-risk-coverage.png`."""
    return plot.with_name(f"{plot.stem}-risk-coverage{plot.suffix or '.png'}")


def write_risk_coverage_plot(reports: list[dict[str, Any]], path: Path) -> None:
    """Risk against coverage for each set's dev and test split: where a threshold would sit."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), squeeze=False)
    for ax, split in zip(axes[0], ("dev", "test"), strict=True):
        for rep in reports:
            curve = rep.get("selective", {}).get(split)
            if not curve or not curve["curve"]:
                continue
            xs, ys = zip(*curve["curve"], strict=True)
            style = {"color": "black", "linewidth": 2.2} if rep["set"] == "pooled" else {}
            ax.plot(xs, ys, label=f"{rep['set']} (AURC {curve['aurc']:.3f})", **style)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1)
        ax.set_xlabel("coverage (share of questions answered, most confident first)")
        ax.set_ylabel("risk (share of those answers that are wrong)")
        ax.grid(alpha=0.3)
        ax.set_title(f"{split} split", fontsize=10, loc="left")
        ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)
