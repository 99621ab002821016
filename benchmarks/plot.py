"""Plot query latency and ingest time against corpus size from a benchmark JSON file.

    python -m benchmarks.plot [RESULTS.json ...] [--out docs/performance.png]

Several result files may be given (for instance a run at 100 and 1,000 documents and a separate
`--stand-in-sizes 10000` run): their corpus rows are drawn together, the first file gives the
rest. Default: benchmarks/results/latest.json.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
STYLE = {"embedded": ("tab:blue", "o"), "server": ("tab:orange", "s"),
         "starter": ("tab:gray", "^")}


def plot(results: dict[str, Any], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (lat, ing) = plt.subplots(1, 2, figsize=(11, 4.2))
    measured = [r for r in results.get("scale", []) if r.get("p50_ms") is not None
                and not r.get("stand_in")]
    stand_in = sorted((r for r in results.get("scale", []) if r.get("stand_in")
                       and r.get("p50_ms") is not None), key=lambda r: r["docs"])
    if stand_in:
        color, marker = STYLE["embedded"]
        xs = [r["docs"] for r in stand_in]
        lat.plot(xs, [r["p50_ms"] for r in stand_in], marker="D", color=color,
                 linestyle="none", markerfacecolor="none", markersize=8,
                 label="ours, embedded, p50 (stand-in vectors)")
        lat.plot(xs, [r["p95_ms"] for r in stand_in], marker="D", color=color, alpha=0.6,
                 linestyle="none", markerfacecolor="none", markersize=6,
                 label="ours, embedded, p95 (stand-in vectors)")
    for backend in ("embedded", "server"):
        rows = sorted((r for r in measured if r["backend"] == backend), key=lambda r: r["docs"])
        if not rows:
            continue
        color, marker = STYLE[backend]
        xs = [r["docs"] for r in rows]
        lat.plot(xs, [r["p50_ms"] for r in rows], marker=marker, color=color,
                 label=f"ours, {backend} Chroma, p50")
        lat.plot(xs, [r["p95_ms"] for r in rows], marker=marker, color=color, linestyle="--",
                 alpha=0.6, label=f"ours, {backend} Chroma, p95")
        ing.plot(xs, [r["ingest_s"] for r in rows], marker=marker, color=color,
                 label=f"ours, {backend} Chroma")
        estimated = [r for r in results.get("scale", [])
                     if r["backend"] == backend and r.get("estimated_ingest_s")]
        if estimated:
            ex = [rows[-1]["docs"]] + [r["docs"] for r in estimated]
            ey = [rows[-1]["ingest_s"]] + [r["estimated_ingest_s"] for r in estimated]
            ing.plot(ex, ey, color=color, linestyle=":", marker=marker, markerfacecolor="none",
                     label=f"ours, {backend}: estimated (not run)")
    starter = sorted((r for r in results.get("starter_scale", []) if "p50_ms" in r),
                     key=lambda r: r["docs"])
    if starter:
        color, marker = STYLE["starter"]
        xs = [r["docs"] for r in starter]
        lat.plot(xs, [r["p50_ms"] for r in starter], marker=marker, color=color, linestyle="none",
                 markersize=8, label="LlamaIndex starter, retrieve p50")
        ing.plot(xs, [r["ingest_s"] for r in starter], marker=marker, color=color,
                 linestyle="none", markersize=8, label="LlamaIndex starter (top 256 tokens "
                 "of 1,024-token chunks)")
    warm = results.get("warm_seed", {}).get("p50_ms")
    if warm is not None:
        lat.scatter([1], [warm], color="black", marker="*", s=80, zorder=3,
                    label="ours, seed article, p50")
    lat.axhline(50, color="tab:red", linestyle=":", linewidth=1, label="target at 10,000 docs")
    lat.axhline(15, color="tab:green", linestyle=":", linewidth=1, label="target on the seed")
    for ax, title, ylabel in ((lat, "Warm query latency", "ms per ask"),
                              (ing, "Ingest time", "seconds")):
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel("documents in the corpus (about 4,600 characters each)")
        ax.set_ylabel(ylabel)
        ax.grid(True, which="both", alpha=0.3)
    ing.legend(fontsize=7)
    ing.set_yscale("log")
    lat.set_yscale("log")
    low, high = lat.get_ylim()
    lat.set_ylim(low, high * 4)  # room for the legend above the data
    lat.legend(fontsize=6.5, ncol=2, loc="upper left")
    meta = results.get("meta", {})
    fig.suptitle(f"assistant benchmarks, {meta.get('started', '')[:10]}, "
                 f"{meta.get('cpus')} CPUs (load average {meta.get('loadavg_start')})",
                 fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, nargs="*")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.png")
    args = p.parse_args(argv)
    paths = args.results or [ROOT / "benchmarks" / "results" / "latest.json"]
    loaded = [json.loads(path.read_text(encoding="utf-8")) for path in paths]
    results = dict(loaded[0])
    results["scale"] = [row for r in loaded for row in r.get("scale", [])]
    results["starter_scale"] = [row for r in loaded for row in r.get("starter_scale", [])]
    plot(results, args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
