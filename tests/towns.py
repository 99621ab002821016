"""A corpus of small, similar documents (one fictional town each) for the scale-out tests.

Every town has a unique name, mason and year, so a question names exactly one right document.
`snapshot` records the texts of a version, so a test can check any citation against the version
its answer came from.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

_A = ["Ash", "Brack", "Cald", "Dun", "Elm", "Fern", "Gar", "Hol", "Ing", "Kel", "Lin", "Mor"]
_B = ["by", "ford", "ham", "ley", "mouth", "stead", "ton", "wick", "worth", "well"]
_FIRST = ["Ada", "Bram", "Cora", "Dell", "Enid", "Finn", "Gwen", "Hugo", "Ida", "Jory", "Kit", "Lu"]
_LAST = ["Abbot", "Birch", "Carver", "Dodd", "Ebbs", "Fallow", "Grice", "Hurst", "Ives", "Judd"]


@dataclass(frozen=True)
class Town:
    name: str
    mason: str
    year: int
    river: str

    def text(self, year: int | None = None) -> str:
        year = self.year if year is None else year
        return (
            f"# {self.name}\n\n"
            f"{self.name} is a market town on the river {self.river}. "
            f"The stone bridge of {self.name} was built in {year} by the mason {self.mason}. "
            f"The town hall of {self.name} holds a small collection of maps.\n"
        )

    @property
    def source(self) -> str:
        return f"towns/{self.name.lower()}.md"

    def question(self) -> str:
        return f"Who built the stone bridge of {self.name}?"


def towns(n: int = 30, seed: int = 6) -> list[Town]:
    """The first `n` towns (at most 120); a longer list starts with the shorter one."""
    rng = random.Random(seed)
    names = rng.sample([a + b for a in _A for b in _B], 120)
    masons = rng.sample([f"{f} {la}" for f in _FIRST for la in _LAST], 120)
    rivers = [rng.choice(_A) + "e" for _ in range(120)]
    years = rng.sample(range(1600, 1900), 120)
    return [Town(*t) for t in zip(names, masons, years, rivers, strict=True)][:n]


def write(seeds: Path, items: list[Town]) -> None:
    for t in items:
        path = seeds / t.source
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(t.text(), encoding="utf-8")


def snapshot(seeds: Path) -> dict[str, str]:
    """Every document's text now, by source."""
    return {
        p.relative_to(seeds).as_posix(): p.read_text(encoding="utf-8")
        for p in sorted(seeds.rglob("*"))
        if p.is_file()
    }
