"""A deterministic synthetic news corpus whose answers can be checked.

Every document (4-5k characters, a headline, paragraphs and a subheading) reports on one fictional
town and carries four facts no other document has: the town's mayor, its number of residents, the
cost of a new facility and the founder of its festival. The rest is shared filler that mentions
mayors, residents, costs and festivals in general, so that only the unique names can tell documents
apart. Document `i` is the same whatever the corpus size, so a corpus of 100 is a prefix of one of
10,000.

    python -m benchmarks.corpus OUT_DIR --docs 1000     # writes OUT_DIR/docs/*.txt, probes.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
from dataclasses import asdict, dataclass
from pathlib import Path

VERSION = 1
MAX_DOCS = 12_000  # fewer than the distinct town names

_SURNAME_SYL = ("ka", "lo", "ven", "dra", "mir", "tes", "bo", "ran", "sel", "vik", "dor", "an",
                "mel", "fi", "gor", "lu", "zen", "par", "ot", "bri", "nal", "ser", "tu", "ham",
                "quo", "rel", "dis", "va", "jor", "mek")
_TOWN_SYL = ("tar", "nel", "bro", "cas", "wen", "dal", "mor", "fen", "hal", "lin", "ost", "rav",
             "sko", "bel", "tor", "gul", "ash", "kel", "pim", "dun", "var", "ell", "sol", "hep",
             "cor", "mab", "nis", "tew", "orm")
_TOWN_END = ("ford", "by", "wick", "holm", "stead", "mere", "dale", "ton", "ham", "field", "burg",
             "mouth", "port", "well", "crest")
_FIRST = ("Ada", "Bruno", "Clara", "Dmitri", "Elena", "Farid", "Greta", "Hugo", "Ines", "Jonas",
          "Katya", "Luis", "Marta", "Nikolai", "Olga", "Pavel", "Rosa", "Stefan", "Tamsin",
          "Ulrich", "Vera", "Wilhelm", "Yara", "Zoltan", "Agnes", "Boris", "Celia", "Dario",
          "Edith", "Felix")
_FACILITIES = ["footbridge", "library", "swimming pool", "fire station", "bus depot",
               "community hall", "water tower", "clinic", "ferry terminal", "sports ground"]
_FESTIVAL = ("Lantern", "Harvest", "Kite", "Jazz", "Cider", "Puppet", "Mask", "Film", "Salmon",
             "Chestnut", "Choir", "Ember", "Tulip", "Regatta", "Folk", "Honey")
_REGION = ["the Vell Valley", "the Orran Coast", "the Northern Marches", "Lower Casmoor",
           "the Dunwater Basin", "the High Tessel", "the Saltreach", "East Morrowfield"]
_OFFICIAL = ["councillor Ana Brooks", "councillor Tom Reyes", "planning officer Mei Chen",
             "treasurer Paul Okafor", "councillor Lena Hart", "engineer Sam Doyle",
             "spokesperson Rita Gomez", "councillor Ivan Petrov"]
_WEEKDAY = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")
_MONTH = ("January", "February", "March", "April", "May", "June", "July", "September", "October",
          "November")
_HEADINGS = ["What Comes Next", "A Divided Council", "The Budget Question", "Local Reaction",
             "Looking Ahead", "Behind the Vote"]

# Shared filler: generic local news. Placeholders: {town} {region} {official} {weekday} {month}
# {n} (a small number) {pct} (a percentage).
_FILLER = [
    "Residents packed the council chamber on {weekday} evening, and several had to stand at "
    "the back for the whole meeting.",
    "A spokesperson for the mayor's office declined to comment on the timetable when asked "
    "by reporters after the session.",
    "The council has met {n} times since the start of the year, more often than in any year "
    "of the previous decade.",
    "Officials did not say how much the planned repairs to the ring road would eventually cost "
    "the town.",
    "Organisers of the summer festival said the event would return next year if the weather "
    "was kind to them again.",
    "{official} told the meeting that the plan had been discussed with neighbouring towns "
    "across {region}.",
    "Traffic on the main road through {town} has risen by {pct} percent over the past five "
    "years, according to a regional survey.",
    "Local shopkeepers said footfall on the high street had improved since the market moved "
    "back to the square in {month}.",
    "The regional newspaper reported that turnout at the last local election was lower than "
    "expected across {region}.",
    "Some residents questioned whether the town could afford another large project while the "
    "schools still needed new roofs.",
    "Heavy rain in {month} flooded several cellars near the river and closed the lower bridge "
    "for two days.",
    "The town's two secondary schools have together enrolled {n} new pupils this autumn, a "
    "figure both head teachers welcomed.",
    "{official} said the council would publish the full accounts on its website before the end "
    "of {month}.",
    "Bus services to the surrounding villages were cut last winter, a decision that still "
    "angers many older residents.",
    "Opposition councillors argued that the consultation had been too short and that many "
    "people had not heard about it.",
    "A petition calling for more street lighting along the canal path gathered {n} signatures "
    "in a single week.",
    "The regional development agency has promised to match any money the town raises for "
    "small businesses this year.",
    "Farmers in the hills above {town} said the dry spring had cut their hay harvest by almost "
    "{pct} percent.",
    "The local football club, which plays in the third division of {region}, is looking for a "
    "new training ground.",
    "Volunteers cleared litter from the riverbank on {weekday} morning as part of a campaign "
    "run by the youth council.",
    "Housing remains the main concern raised at public meetings, with rents rising faster than "
    "wages for a third year.",
    "The town museum reopened in {month} after a renovation that took longer than its trustees "
    "had hoped.",
    "A review of the town's finances found that the reserve fund had fallen to its lowest "
    "level in a decade.",
    "Council staff said they had received {n} letters about the proposal, most of them in "
    "favour.",
    "The railway station, which sees {n} trains a day, is due to get a new footbridge and lifts "
    "next year.",
    "Critics said the plans paid too little attention to parking, which is already scarce in "
    "the old centre.",
    "Visitors from across {region} are expected in large numbers during the holidays, "
    "according to the tourist office.",
    "{official} described the mood in the chamber as tense but said the debate had been "
    "respectful.",
    "The council also approved a small grant for the sailing club and new benches for the "
    "cemetery.",
    "A local charity warned that demand at its food bank had doubled since the factory closed "
    "in {month}.",
    "Several councillors asked for an independent report before any further money is spent on "
    "consultants.",
    "The fire brigade answered {n} call-outs last month, most of them false alarms in the "
    "industrial estate.",
    "The mayor's office has said in the past that it wants the town to be carbon neutral within "
    "twenty years.",
    "A new cycle lane linking the station with the hospital is expected to open before the end "
    "of the year.",
    "Many residents said they learned about the decision from social media rather than from "
    "the council itself.",
    "Teachers at the primary school organised a concert to raise money for new musical "
    "instruments.",
    "The harbour master said the number of visiting boats had grown by {pct} percent since the "
    "marina was dredged.",
    "According to {official}, the town's population has been growing slowly since the new "
    "factory opened nearby.",
    "Police said the festival weekend passed without serious incident, although two people "
    "were cautioned for fighting.",
    "Business owners on the ring road asked the council to delay the roadworks until after the "
    "Christmas trade.",
    "The library's opening hours were cut last year, a decision that the council now says it "
    "wants to reverse.",
    "The town's twin town in the south sent a delegation of {n} people to the anniversary "
    "celebrations.",
    "Planning documents show that the site was once used as a brickworks and may need cleaning "
    "before building starts.",
    "An independent councillor said the whole process had been rushed and called for a public "
    "inquiry.",
    "Costs for comparable projects elsewhere in {region} have risen sharply because of higher "
    "prices for steel and concrete.",
    "The council's website crashed briefly on {weekday} as residents tried to read the "
    "published plans.",
    "The chamber of commerce welcomed the decision and said it would bring more visitors to "
    "{town}.",
    "A survey by the local paper found that {pct} percent of readers supported the plan, while "
    "the rest were undecided or opposed.",
    "Construction firms from across {region} are expected to bid for the contract when it is "
    "advertised in {month}.",
    "The lower bridge, built more than a century ago, is inspected every spring by engineers "
    "from the regional authority.",
    "The council said it would hold another public meeting before the final decision, probably "
    "on a {weekday}.",
    "Older residents remember when the town had its own cinema, which closed in the nineteen "
    "eighties.",
    "Youth workers said young people in {town} need more places to meet in the evenings, "
    "especially in winter.",
    "{official} said the town had learned from mistakes made during the last major building "
    "project.",
    "The town's allotment society has a waiting list of {n} households, the longest it has "
    "ever been.",
]

_HEADLINE = ["{town} council backs new {facility} after long debate",
             "{town} approves {facility} as costs are questioned",
             "New {facility} for {town} wins narrow council vote",
             "{town} presses ahead with {facility} despite objections"]


@dataclass(frozen=True)
class Probe:
    """A question, a substring the right answer contains, and the document that holds it."""

    question: str
    answer: str
    source: str
    kind: str


@dataclass(frozen=True)
class SyntheticDoc:
    source: str
    text: str
    probes: tuple[Probe, ...]


def _permute(i: int, size: int, a: int, b: int) -> int:
    """A fixed bijection of range(size) (a is coprime with size), so names never repeat."""
    return (a * i + b) % size


def _surname(k: int) -> str:
    n = len(_SURNAME_SYL)
    s = _SURNAME_SYL[k % n] + _SURNAME_SYL[(k // n) % n] + _SURNAME_SYL[(k // n // n) % n]
    return s.capitalize()


def _town(k: int) -> str:
    n, m = len(_TOWN_SYL), len(_TOWN_END)
    s = _TOWN_SYL[k % n] + _TOWN_SYL[(k // n) % n] + _TOWN_END[(k // n // n) % m]
    return s.capitalize()


def make_document(i: int, seed: int = 0) -> SyntheticDoc:
    """Document number `i` of the corpus with this seed."""
    if not 0 <= i < MAX_DOCS:
        raise ValueError(f"document index {i} out of range 0..{MAX_DOCS - 1}")
    rng = random.Random(f"{seed}:{i}")
    surnames = len(_SURNAME_SYL) ** 3  # 27,000
    towns = len(_TOWN_SYL) ** 2 * len(_TOWN_END)  # 12,615
    town = _town(_permute(i, towns, 7919, 4321 + seed))
    mayor_first = rng.choice(_FIRST)
    mayor = _surname(_permute(2 * i, surnames, 7717, 1234 + seed))
    founder_first = rng.choice(_FIRST)
    founder = _surname(_permute(2 * i + 1, surnames, 7717, 1234 + seed))
    residents = f"{rng.randint(10, 98)},{rng.randint(0, 999):03d}"
    cost = f"${rng.randint(2, 89)}.{rng.randint(1, 9)} million"
    facility = rng.choice(_FACILITIES)
    festival = f"{town} {rng.choice(_FESTIVAL)} Festival"
    year = rng.randint(1951, 2012)

    facts = [
        f"{town} mayor {mayor_first} {mayor} said the council would review the project again "
        f"in {rng.choice(_MONTH)}.",
        f"{town} has {residents} residents, according to the most recent census.",
        f"The new {facility} will cost {town} {cost}, most of it paid by a regional grant.",
        f"The {festival} was founded by {founder_first} {founder} in {year} and now draws "
        f"visitors from across the region.",
    ]
    probes = (
        Probe(f"Who is the mayor of {town}?", mayor, "", "mayor"),
        Probe(f"How many residents does {town} have?", residents, "", "residents"),
        Probe(f"How much will the new {facility} in {town} cost?", cost, "", "cost"),
        Probe(f"Who founded the {festival}?", founder, "", "founder"),
    )

    def fill(template: str) -> str:
        return template.format(town=town, region=rng.choice(_REGION),
                               official=rng.choice(_OFFICIAL), weekday=rng.choice(_WEEKDAY),
                               month=rng.choice(_MONTH), n=rng.randint(3, 400),
                               pct=rng.randint(2, 40))

    target = rng.randint(4000, 5000)
    filler = [fill(t) for t in rng.sample(_FILLER, len(_FILLER))]
    filler = [s[0].upper() + s[1:] for s in filler]
    sentences: list[str] = []
    length = 0
    while filler and length < target - sum(len(f) + 1 for f in facts):
        sentences.append(filler.pop())
        length += len(sentences[-1]) + 1
    for fact in facts:  # facts anywhere but the very first sentence
        sentences.insert(rng.randint(1, len(sentences)), fact)

    paragraphs: list[str] = []
    pos = 0
    while pos < len(sentences):
        size = rng.randint(2, 5)
        paragraphs.append(" ".join(sentences[pos : pos + size]))
        pos += size
    heading_at = rng.randint(len(paragraphs) // 2, max(len(paragraphs) // 2, len(paragraphs) - 2))
    paragraphs.insert(heading_at, rng.choice(_HEADINGS))
    headline = rng.choice(_HEADLINE).format(town=town, facility=facility)
    text = headline + "\n\n" + "\n\n".join(paragraphs) + "\n"
    source = f"news_{i:05d}.txt"
    return SyntheticDoc(source, text, tuple(Probe(p.question, p.answer, source, p.kind)
                                            for p in probes))


def generate(n: int, seed: int = 0) -> list[SyntheticDoc]:
    return [make_document(i, seed) for i in range(n)]


def sample_probes(n_docs: int, k: int, seed: int = 0) -> list[Probe]:
    """k probes spread evenly over the first n_docs documents, cycling through the fact kinds."""
    k = min(k, 4 * n_docs)
    picks = []
    for j in range(k):
        i = (j * n_docs) // k if k <= n_docs else j % n_docs
        picks.append(make_document(i, seed).probes[j % 4])
    return picks


def write_corpus(folder: Path, n: int, seed: int = 0) -> Path:
    """Write the documents to `folder/docs` (kept if already written) and probes.jsonl."""
    folder = Path(folder)
    marker = folder / "corpus.json"
    stamp = {"version": VERSION, "docs": n, "seed": seed}
    docs_dir = folder / "docs"
    if marker.exists() and json.loads(marker.read_text()) == stamp:
        return docs_dir
    docs_dir.mkdir(parents=True, exist_ok=True)
    for old in docs_dir.glob("*.txt"):
        old.unlink()
    with (folder / "probes.jsonl").open("w", encoding="utf-8") as fh:
        for doc in generate(n, seed):
            (docs_dir / doc.source).write_text(doc.text, encoding="utf-8")
            for p in doc.probes:
                fh.write(json.dumps(asdict(p)) + "\n")
    marker.write_text(json.dumps(stamp))
    return docs_dir


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("out", type=Path)
    p.add_argument("--docs", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    docs = write_corpus(args.out, args.docs, args.seed)
    print(f"{args.docs} documents in {docs}; probes in {args.out / 'probes.jsonl'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
