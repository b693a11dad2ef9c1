"""A labelled caption set: the captions of a made-up web data set whose people, and how often each is named,
are known, with the traps a real one holds. It measures the caption scan (`idia scan`): precision and recall of
the names it finds, and how close its counts come (tests, bench/bench_scan.py).

Everything follows from a seed. People get first names from idia's bundled list and common international ones,
and surnames from the bundled list, common English words (Stone, King, Park), and names with particles,
apostrophes, hyphens and accents (van der Berg, O'Brien, Smith-Jones, Saldaña). How often a person is named
falls off like a power law of their rank. A mention is written in one of several ways: a sentence (with a title
or role before the name, a possessive, a middle initial), ALL CAPS, "LAST, First", a Title Case stock caption,
the name alone, or beside a second person; accented names also lose their accents at times. The other captions
are traps: Title Case stock photos ("Rose Garden In Full Bloom", "Will Power Concept"), places ("Florence Italy
skyline", "George Washington Bridge"), organisations named after people ("Nadia Cole Foundation"), brands and
products ("Calvin Klein jeans", a designer's name before "sunglasses"), agency credits, and plain descriptions.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import numpy as np

from idia.attack.inputs import names as name_lists
from idia.attack.inputs.captions.lexicon import fold

MORE_FIRST = ("Emma", "Olivia", "James", "Michael", "Sofia", "Lucas", "Mateo", "Chloe", "Daniel", "Laura", "David",
              "Sarah", "Thomas", "Anna", "Marco", "Elena", "Pierre", "Hans", "Ingrid", "Yuki", "Hiroshi", "Priya",
              "Rahul", "Fatima", "Omar", "Aisha", "Carlos", "Lucia", "Ivan", "Olga", "Sven", "Astrid", "Kwame",
              "Diego", "Camila", "Noah", "Liam", "Grace", "Jack", "Mark", "Victoria", "Jordan", "Paris", "Georgia",
              "Madison", "Summer", "Dawn", "Frank", "Zoë", "José", "Renée", "Søren", "Chloé", "Jürgen")
WORD_SURNAMES = ("Stone", "King", "Young", "Brown", "White", "Green", "Hill", "Wood", "Bell", "Cook", "Baker",
                 "Price", "Fox", "Hunter", "Mason", "Carter", "Parker", "Ward", "Park", "Day", "Smith", "Little")
SHAPED_SURNAMES = ("van der Berg", "de la Cruz", "van Dijk", "de Souza", "da Silva", "dos Santos", "von Trapp",
                   "bin Salman", "al-Farsi", "di Maria", "de Vries", "le Roux", "O'Brien", "O'Connor", "McDonald",
                   "McAllister", "MacLeod", "D'Souza", "Smith-Jones", "Saldaña", "Müller", "Gómez", "Dvořák")

SENTENCES = ("{name} at the premiere of her new film in {city}", "{role} {name} poses for photographers",
             "{title} {name} speaks during a press conference in {city}", "{name}'s new album cover",
             "Portrait of {name}, {year}", "a photo of {name} smiling", "{name} arrives at the {event} on {month}",
             "Fans greet {name} outside the hotel in {city}", "{name} (C) and guests at the charity gala",
             "{name} with her dog in the park", "{role} {name} during a training session",
             "An interview with {name} about the new season", "{name} signs autographs after the match",
             "Exclusive: {name}'s house in {city} is for sale")
CAPS = ("{name} AT THE {EVENT}", "{name} PERFORMS IN {CITY}", "{name} ARRIVES FOR THE AWARDS")
TITLE = ("{name} Smiling At The Red Carpet Event", "Portrait Of {name} In The Studio",
         "{name} Attends The Annual Gala Dinner", "Candid Photo Of {name} Walking In {city}")
PAIRS = ("{name} and {other} at the {event}", "{name} (left) with {other} in {city}",
         "{title} {name} meets {other}")
ROLES = ("actress", "Actor", "singer", "CEO", "striker", "Senator", "designer", "Olympic champion", "author")
TITLES = ("President", "Dr.", "Prime Minister", "Sir", "Mrs.", "Prof.", "Coach", "Mayor")
CITIES = ("London", "Paris", "Berlin", "Tokyo", "New York", "Los Angeles", "Madrid", "Toronto", "Sydney", "Milan")
EVENTS = ("film festival", "Met Gala", "Golden Globes", "fashion week", "opening ceremony", "book launch")
MONTHS = ("January 5", "March 12", "May 3", "June 21", "September 9", "November 30")

STOCK_WORDS = (("Happy", "Young", "Senior", "Smiling", "Beautiful", "Confident", "Tired", "Little"),
               ("Woman", "Man", "Couple", "Family", "Girl", "Boy", "Businessman", "Team", "Doctor"),
               ("Working On Laptop", "Drinking Coffee", "Walking In The Park", "Smiling At Camera",
                "Holding A Gift", "Reading A Book", "Cooking At Home", "In The Office"))
STOCK_PHRASES = ("Rose Garden In Full Bloom", "Will Power Concept On Blackboard", "Grace And Beauty In Nature",
                 "Summer Holiday On The Beach", "Christian Cross On A Hill At Sunset", "Hope Written In The Sand",
                 "Mark Your Calendar Reminder", "Frank Discussion Between Colleagues", "Dawn Over The Mountains",
                 "Jack Russell Terrier Puppy Playing", "Autumn Leaves Falling In The Forest",
                 "Victoria Sponge Cake With Strawberries", "Paris Street Cafe At Night", "Joy And Happiness Concept")
PLACES = ("{city}, {country} skyline at night", "View of Victoria Station, London", "Sunset over the Jordan River",
          "Florence Italy panorama from the hill", "George Washington Bridge in the fog", "Tourists in Paris France",
          "Lake Victoria fishermen at dawn", "Santa Monica Pier at dusk", "Georgia Aquarium entrance",
          "the Lincoln Memorial at night", "Madison Square Garden before the game", "Victoria Park in spring",
          "Austin Texas downtown", "Visiting Sydney Australia", "Chelsea Harbour marina", "SAN FRANCISCO CALIFORNIA")
ORGS = ("{maker} Foundation charity dinner", "Students at {maker} High School", "The {maker} Memorial Hospital",
        "{maker} Center for the Arts", "Opening of the {maker} Museum", "{maker} Award winners on stage")
BRANDS = ("Calvin Klein jeans on display", "Louis Vuitton handbag", "Tommy Hilfiger store in London",
          "Ralph Lauren polo shirt", "Hugo Boss suit advertisement", "Christian Dior perfume bottle",
          "Jack Daniels whiskey bottle", "Harley Davidson motorcycle", "Aston Martin DB5 at the show",
          "Jimmy Choo shoes", "{maker} sunglasses collection", "{maker} handbag in red leather",
          "{maker} perfume advertisement", "New {maker} sneakers")
CREDITS = ("REUTERS/Stringer", "AFP PHOTO / POOL", "Getty Images / AFP", "AP Photo/File", "EPA-EFE/POOL",
           "Shutterstock stock photo", "Photo: Xinhua News Agency", "Stock Photo - Alamy")
PLAIN = ("a dog running on the beach", "sunset over the mountains", "bowl of fresh fruit on a table",
         "an old red tractor in a field", "close-up of a blue flower", "a bicycle leaning against a wall",
         "city traffic at night", "snow on pine trees")
COUNTRIES = ("France", "Italy", "Japan", "Canada", "Germany", "Spain", "Australia")


@dataclass
class CaptionSet:
    captions: list[str]
    truth: list[tuple[str, ...]]  # each caption's people, by key (extract.Mention.key)
    people: dict[str, str]  # key -> name as written

    def true_counts(self) -> Counter:
        return Counter(k for keys in self.truth for k in keys)


def person_key(name: str) -> str:
    return " ".join(fold(w).replace("-", " ") for w in name.split())


def _people(rng: np.random.Generator, n: int) -> list[tuple[str, str]]:
    firsts = list(name_lists.first_names()) + list(MORE_FIRST) * 3
    lasts = list(name_lists.last_names()) + list(WORD_SURNAMES) * 4 + list(SHAPED_SURNAMES) * 4
    out, seen = [], set()
    while len(out) < n:
        first, last = firsts[int(rng.integers(len(firsts)))], lasts[int(rng.integers(len(lasts)))]
        key = person_key(f"{first} {last}")
        if key not in seen:
            seen.add(key)
            out.append((first, last))
    return out


def _strip_accents(text: str) -> str:
    import unicodedata
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _mention(rng, first: str, last: str, other: str | None) -> str:
    """One caption naming the person (and `other`, when given), written one of the ways a web caption is."""
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    fill = {"city": pick(CITIES), "event": pick(EVENTS), "year": str(int(rng.integers(1990, 2024))),
            "month": pick(MONTHS), "role": pick(ROLES), "title": pick(TITLES)}
    name = f"{first} {last}"
    if rng.random() < 0.25 and _strip_accents(name) != name:
        name = _strip_accents(name)
    if other is not None:
        return pick(PAIRS).format(name=name, other=other, **fill)
    u = rng.random()
    if u < 0.52:
        if rng.random() < 0.12:
            name = f"{first} {chr(65 + int(rng.integers(26)))}. {last}"
        return pick(SENTENCES).format(name=name, **fill)
    if u < 0.64:
        return pick(CAPS).format(name=name.upper(), EVENT=fill["event"].upper(), CITY=fill["city"].upper())
    if u < 0.72:
        return (f"{last.upper()}, {first} - {fill['role']}, {fill['year']}" if rng.random() < 0.5 else
                f"{last}, {first}. Photo taken in {fill['year']}.") if " " not in last else name
    if u < 0.88:
        return pick(TITLE).format(name=name, city=fill["city"])
    return name


def _trap(rng, makers: list[str]) -> str:
    pick = lambda xs: xs[int(rng.integers(len(xs)))]  # noqa: E731
    u = rng.random()
    if u < 0.25:
        return " ".join(pick(w) for w in STOCK_WORDS)
    if u < 0.38:
        return pick(STOCK_PHRASES)
    if u < 0.55:
        return pick(PLACES).format(city=pick(CITIES), country=pick(COUNTRIES))
    if u < 0.65:
        return pick(ORGS).format(maker=pick(makers))
    if u < 0.80:
        return pick(BRANDS).format(maker=pick(makers))
    if u < 0.88:
        return pick(CREDITS)
    return pick(PLAIN)


def labelled_captions(n_captions: int = 20_000, seed: int = 0, n_people: int = 800, person_share: float = 0.6,
                      zipf: float = 0.9) -> CaptionSet:
    """`n_captions` captions in a shuffled order, about `person_share` of them naming people."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 22]))
    people = _people(rng, n_people + 60)
    people, makers = people[:n_people], [f"{f} {s}" for f, s in people[n_people:]]  # makers: named, never people
    weights = 1.0 / np.arange(1, n_people + 1) ** zipf
    counts = np.maximum(1, np.round(weights / weights.sum() * n_captions * person_share)).astype(int)
    rows: list[tuple[str, tuple[str, ...]]] = []
    for i, ((first, last), count) in enumerate(zip(people, counts)):
        me = person_key(f"{first} {last}")
        for _ in range(count):
            other = None
            if rng.random() < 0.05:
                j = int(rng.integers(n_people))
                if j != i:
                    other = people[j]
            caption = _mention(rng, first, last, f"{other[0]} {other[1]}" if other else None)
            rows.append((caption, (me, person_key(f"{other[0]} {other[1]}")) if other else (me,)))
    while len(rows) < n_captions:
        rows.append((_trap(rng, makers), ()))
    order = rng.permutation(len(rows))
    names = {person_key(f"{f} {s}"): f"{f} {s}" for f, s in people}
    return CaptionSet([rows[i][0] for i in order], [rows[i][1] for i in order], names)


def evaluate(found: dict[str, int], captions: CaptionSet, min_mentions: int = 3, tolerance: float = 0.10) -> dict:
    """Precision (of the names found in at least `min_mentions` captions, the share that are people of the set),
    recall (of the people named in at least `min_mentions` captions, the share found) and count accuracy (of those,
    the share whose count is within `tolerance` of the truth)."""
    truth = captions.true_counts()
    relevant = [k for k, c in truth.items() if c >= min_mentions]
    predicted = [k for k, c in found.items() if c >= min_mentions]
    correct = [k for k in predicted if k in truth]
    recalled = [k for k in relevant if found.get(k, 0) > 0]
    close = [k for k in relevant if abs(found.get(k, 0) - truth[k]) <= tolerance * truth[k]]
    return {"precision": len(correct) / max(1, len(predicted)), "recall": len(recalled) / max(1, len(relevant)),
            "counts_within": len(close) / max(1, len(relevant)), "tolerance": tolerance,
            "n_relevant": len(relevant), "n_predicted": len(predicted),
            "false_people": sorted(set(predicted) - set(truth))[:20],
            "missed": sorted(set(relevant) - set(recalled))[:20],
            "miscounted": sorted(((k, truth[k], found.get(k, 0)) for k in relevant if k not in close),
                                 key=lambda r: -r[1])[:20]}
