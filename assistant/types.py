"""Plain data types of the public API."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Citation:
    """A verified span of a source: `quote == text_of(source)[start:end]`.

    `page` (1-based) is set for a PDF, whose text is its extracted text; None otherwise.
    """

    source: str
    start: int
    end: int
    quote: str
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        if self.page is None:
            del d["page"]
        return d


@dataclass
class Answer:
    """What `Assistant.ask` returns."""

    text: str
    abstained: bool
    mode: str
    citations: list[Citation] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    question: str = ""
    notice: str | None = None
    unsupported: list[str] = field(default_factory=list)
    usage: dict[str, int] | None = None
    trace: dict[str, Any] = field(default_factory=dict, repr=False)
    sources: dict[str, str] = field(default_factory=dict)  # cited source -> its title
    # When abstaining: the closest passages retrieved, verified, shown as related, not an answer.
    related: list[Citation] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the same shape as `assistant ask --json`."""
        out: dict[str, Any] = {
            "answer": self.text,
            "abstained": self.abstained,
            "mode": self.mode,
            "citations": [c.to_dict() for c in self.citations],
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
        }
        if self.notice:
            out["notice"] = self.notice
        if self.unsupported:
            out["unsupported"] = list(self.unsupported)
        if self.usage is not None:
            out["usage"] = dict(self.usage)
        if self.sources:
            out["sources"] = dict(self.sources)
        if self.related:
            out["related"] = [c.to_dict() for c in self.related]
        return out


@dataclass(frozen=True)
class IngestSummary:
    """Counts of what an ingest did to the index."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    skipped: tuple[str, ...] = ()
    chunks: int = 0
    seconds: float = 0.0
    reasons: tuple[tuple[str, str], ...] = ()  # (skipped source, why)
    duplicates: tuple[tuple[str, str], ...] = ()  # (source, the source with the same text)
    version: int = 0  # the index version this ingest published

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["skipped"] = list(self.skipped)
        d["reasons"] = dict(self.reasons)
        d["duplicates"] = dict(self.duplicates)
        return d
