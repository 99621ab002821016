"""Plot query latency and ingest time against corpus size from a benchmark JSON file.

    python -m benchmarks.plot [benchmarks/results/latest.json] [--out docs/performance.png]
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
    measured = [r for r in results.get("scale", []) if r.get("p50_ms") is not None]
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
        ax.legend(fontsize=7)
    ing.set_yscale("log")
    meta = results.get("meta", {})
    fig.suptitle(f"assistant benchmarks, {meta.get('started', '')[:10]}, "
                 f"{meta.get('cpus')} CPUs (load average {meta.get('loadavg_start')})",
                 fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", type=Path, nargs="?",
                   default=ROOT / "benchmarks" / "results" / "latest.json")
    p.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.png")
    args = p.parse_args(argv)
    plot(json.loads(args.results.read_text(encoding="utf-8")), args.out)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
