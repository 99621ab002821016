"""PDF ingest throughput: pages per second through `assistant ingest`, against pypdfium2 alone.

    python -m benchmarks.pdf_ingest [--docs 12] [--pages 20] [--out benchmarks/results]

Prints, in one run on the same generated PDFs (headless Chromium prints them once, into a temp
folder): pypdfium2's own text extraction (`get_text_range` per page, nothing else), our extraction
(`documents.pdf.extract`: offsets, hyphenation, headers, paragraphs), and a cold `assistant ingest`
of a fresh index in a subprocess (read, split, embed, write Chroma and the sidecar). The ratios say
what our extraction and the whole ingest cost per page relative to the raw extraction.
Writes pdf_ingest.json and pdf_ingest.md to --out.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.measure import run_process
from benchmarks.run import assistant_cmd, child_env, log

WORDS = ["harbour", "ferry", "lighthouse", "quay", "tide", "board", "council", "grain", "ship",
         "keeper", "cape", "island", "winter", "timetable", "dredging", "berth", "survey",
         "channel", "beacon", "pilot", "cargo", "warehouse", "customs", "mooring", "crane"]


def _paragraph(rng: random.Random, n: int) -> str:
    words = [rng.choice(WORDS) for _ in range(n)]
    return " ".join(words).capitalize() + f" in {rng.randint(1850, 2025)}."


def make_pdfs(folder: Path, docs: int, pages: int, chromium: str) -> list[Path]:
    rng = random.Random(16)
    out = []
    for d in range(docs):
        body = "".join(
            f"<h1 style='break-before:page'>Report {d + 1}, part {p + 1}</h1>"
            + "".join(f"<p>{_paragraph(rng, 30)} {_paragraph(rng, 25)}</p>" for _ in range(6))
            for p in range(pages)
        )
        html = folder / f"doc{d:02d}.html"
        html.write_text(
            "<!doctype html><html><head><meta charset='utf-8'><style>@page{size:A4;margin:20mm}"
            "body{font:11pt serif}</style></head><body>" + body + "</body></html>",
            encoding="utf-8",
        )
        pdf = folder / "seeds" / f"doc{d:02d}.pdf"
        with tempfile.TemporaryDirectory() as profile:
            subprocess.run(
                [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 f"--user-data-dir={profile}", f"--print-to-pdf={pdf}", "--no-pdf-header-footer",
                 html.as_uri()],
                check=True, capture_output=True, timeout=300,
            )  # fmt: skip
        out.append(pdf)
    return out


def raw_pdfium(paths: list[Path]) -> tuple[int, float]:
    import pypdfium2 as pdfium

    t0, pages = time.perf_counter(), 0
    for path in paths:
        doc = pdfium.PdfDocument(path.read_bytes())
        for i in range(len(doc)):
            tp = doc[i].get_textpage()
            tp.get_text_range()
            tp.close()
            pages += 1
        doc.close()
    return pages, time.perf_counter() - t0


def ours(paths: list[Path]) -> tuple[float, list[str]]:
    """Seconds our extraction takes over the files, and the texts."""
    from assistant.documents.pdf import extract

    t0, texts = time.perf_counter(), []
    for path in paths:
        texts.append(extract(path.read_bytes()).text)
    return time.perf_counter() - t0, texts


def ingest(seeds: Path, index: Path) -> Any:
    cmd = [*assistant_cmd(), "ingest", "--seeds", str(seeds), "--index", str(index)]
    run = run_process(cmd, env=child_env(), timeout=1800)
    if run.returncode != 0:
        raise SystemExit(run.stderr)
    return run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=int, default=12)
    parser.add_argument("--pages", type=int, default=20, help="pages per PDF")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        (work / "seeds").mkdir()
        log(f"printing {args.docs} PDFs of {args.pages} pages with Chromium")
        paths = make_pdfs(work, args.docs, args.pages, args.chromium)
        ours(paths[:1])  # imports and first-call costs outside the timings
        pages, raw_s = raw_pdfium(paths)
        ours_s, texts = ours(paths)
        from assistant.documents.splitter import parse_document

        sentences = sum(len(parse_document(t).sentences) for t in texts)
        log("cold assistant ingest of a fresh index")
        run = ingest(work / "seeds", work / "index")
        # the same extracted texts as .txt files: what the PDF step adds to an ingest
        (work / "txt").mkdir()
        for path, text in zip(paths, texts, strict=True):
            (work / "txt" / f"{path.stem}.txt").write_text(text, encoding="utf-8")
        log("cold assistant ingest of the same texts as .txt files")
        txt = ingest(work / "txt", work / "index-txt")
        sizes = sum(p.stat().st_size for p in paths)
    result: dict[str, Any] = {
        "docs": args.docs, "pages": pages, "pdf_bytes": sizes, "sentences": sentences,
        "pypdfium2_pages_per_s": round(pages / raw_s, 1),
        "extract_pages_per_s": round(pages / ours_s, 1),
        "ingest_pages_per_s": round(pages / run.wall_s, 1),
        "ingest_sentences_per_s": round(sentences / run.wall_s, 1),
        "ingest_wall_s": round(run.wall_s, 2), "txt_ingest_wall_s": round(txt.wall_s, 2),
        "pdf_vs_txt_ingest": round(txt.wall_s / run.wall_s, 3), "ingest_peak_rss_mib": round(run.max_rss_mib, 1),
        "extract_vs_pypdfium2": round(raw_s / ours_s, 3),
        "ingest_vs_pypdfium2": round(raw_s / run.wall_s, 4),
    }  # fmt: skip
    lines = [
        f"PDF ingest, {args.docs} PDFs, {pages} pages ({sizes / 2**20:.1f} MiB, {sentences} "
        "sentences):",
        f"  pypdfium2 get_text_range alone   {result['pypdfium2_pages_per_s']:>8} pages/s",
        f"  our extraction (documents/pdf)   {result['extract_pages_per_s']:>8} pages/s  "
        f"({result['extract_vs_pypdfium2']:.2f}x pypdfium2)",
        f"  assistant ingest (cold, fresh)   {result['ingest_pages_per_s']:>8} pages/s  "
        f"({result['ingest_vs_pypdfium2']:.3f}x pypdfium2; {run.wall_s:.1f} s, "
        f"peak RSS {run.max_rss_mib:.0f} MiB)",
        f"  assistant ingest, sentences      {result['ingest_sentences_per_s']:>8} sentences/s",
        f"  the same texts as .txt files     {txt.wall_s:>8.1f} s  (PDF ingest at "
        f"{result['pdf_vs_txt_ingest']:.2f}x the speed of the text ingest)",
    ]
    print("\n".join(lines))
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pdf_ingest.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "pdf_ingest.md").write_text("```\n" + "\n".join(lines) + "\n```\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
