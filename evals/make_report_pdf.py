"""Render the report eval corpus to PDF: corpora/report_src/report.html -> report_pdf/report.pdf.

    python evals/make_report_pdf.py [--chromium /usr/bin/chromium]

Headless Chromium's print-to-PDF (A4, the page's own @page margins, no browser header or footer:
the report's running header is its own `position: fixed` element, on every page). The PDF is
committed; run this again only when report.html changes, and re-run `assistant eval --set
report_pdf` after.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
SOURCE = HERE / "corpora" / "report_src" / "report.html"
TARGET = HERE / "corpora" / "report_pdf" / "report.pdf"


def render(chromium: str, source: Path = SOURCE, target: Path = TARGET) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", f"--print-to-pdf={target}", "--no-pdf-header-footer",
             source.resolve().as_uri()],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
    return target


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args()
    out = render(args.chromium)
    print(f"wrote {out.relative_to(HERE.parent)} ({out.stat().st_size} bytes)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
