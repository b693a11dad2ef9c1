"""The caption scan's name finder: the forms a person is written in, the traps that are not people, and its
measured quality on a labelled caption set of 20,000 captions (world.caption_set)."""

import pytest

from idia.attack.inputs.captions.extract import RuleExtractor, title_case
from idia.attack.inputs.captions.run import keep_row
from idia.attack.inputs.captions.tally import Counts, Tally, display_name
from idia.world.caption_set import evaluate, labelled_captions


@pytest.fixture(scope="module")
def extractor():
    return RuleExtractor()


def keys(extractor, caption):
    return {m.key for m in extractor.extract(caption)}


@pytest.mark.parametrize("caption", [
    "Alice Moreno at the premiere of her new film",
    "ALICE MORENO AT THE PREMIERE",
    "Moreno, Alice. Photo taken in 2019.",
    "MORENO, Alice - actress, 2011",
    "MORENO Alice au festival de Cannes",
    "President Alice Moreno speaks to reporters",
    "Dr. Alice Moreno, head of surgery",
    "actress Alice Moreno poses for photographers",
    "Alice Moreno's new album cover",
    "Alice J. Moreno smiling",
    "Portrait Of Alice Moreno In The Studio",
    "Alice Moreno",
])
def test_one_person_is_found_whatever_the_case_order_title_possessive_or_initial(extractor, caption):
    assert keys(extractor, caption) == {"alice moreno"}


@pytest.mark.parametrize("caption, key", [
    ("Dr. Anna van der Berg, CEO of the company", "anna van der berg"),
    ("Sean O'Brien and friends", "sean o'brien"),
    ("Ronald McDonald waves", "ronald mcdonald"),
    ("Fans greet Yves al-Farsi outside the hotel", "yves al farsi"),
    ("Lucia da Silva poses for photographers", "lucia da silva"),
    ("actress Zoë Saldaña poses", "zoe saldana"),
    ("ZOE SALDANA ARRIVES", "zoe saldana"),
    ("Aisha Smith-Jones scores the winner", "aisha smith jones"),
    ("Sarah Jessica Parker in New York", "sarah jessica parker"),
])
def test_particles_apostrophes_hyphens_and_accents_make_one_key(extractor, caption, key):
    assert key in keys(extractor, caption)


@pytest.mark.parametrize("caption", [
    "Happy Young Woman Smiling At Camera", "Rose Garden In Full Bloom", "Will Power Concept On Blackboard",
    "Paris, France skyline at night", "Florence Italy panorama", "Tourists in Paris France",
    "George Washington Bridge in the fog", "Victoria Station, London", "Sunset over the Jordan River",
    "Santa Monica Pier at dusk", "SAN FRANCISCO CALIFORNIA", "Students at Nadia Cole High School",
    "The Nadia Cole Foundation charity dinner", "Calvin Klein jeans on display", "Louis Vuitton handbag",
    "Tom Ford sunglasses", "Christian Dior perfume bottle", "Aston Martin DB5 at the show",
    "REUTERS/Stringer", "Getty Images / AFP", "Photo: Xinhua News Agency", "a dog running on the beach",
    "LONDON, Jan 5 (Reuters) - shares fell", "Victoria Sponge Cake With Strawberries",
])
def test_places_organisations_brands_agencies_and_stock_captions_are_not_people(extractor, caption):
    tally = Tally()
    tally.add(caption, extractor.extract(caption))
    counts = Counts()
    counts.add(tally)
    assert list(counts.rows(keep_row(1))) == []


def test_weak_mentions_count_only_for_people_also_named_in_ordinary_sentences(extractor):
    """All caps and Title Case say nothing about proper nouns: EMMA STONE counts because Emma Stone is named in
    a sentence too; Rose Garden and Young Woman, only ever in Title Case, never do."""
    tally = Tally()
    for c in ["Emma Stone attends the Oscars", "EMMA STONE ARRIVES", "Emma Stone Smiling At The Red Carpet",
              "Rose Garden In Bloom", "Happy Young Woman Smiling At Camera", "Young Woman Drinking Coffee"]:
        tally.add(c, extractor.extract(c))
    counts = Counts()
    counts.add(tally)
    rows = {k: e[0] for k, e in counts.rows(keep_row(1))}
    assert rows == {"emma stone": 3}


def test_names_are_displayed_as_written_and_capitals_as_names():
    assert display_name({"ALICE MORENO": 5, "Alice Moreno": 2}) == "Alice Moreno"
    assert title_case("ANNA VAN DER BERG") == "Anna van der Berg"
    assert title_case("SEAN O'BRIEN") == "Sean O'Brien"
    assert title_case("RONALD MCDONALD") == "Ronald McDonald"


@pytest.mark.slow
def test_precision_recall_and_counts_on_20000_labelled_captions(extractor):
    """Names named in at least 3 captions: precision and recall at least 0.90; counts within 10% for at least
    90% of them. The set's traps are in test_places_... above; its numbers are printed by bench/bench_scan.py."""
    captions = labelled_captions(20_000, seed=1)
    tally = Tally()
    for c in captions.captions:
        tally.add(c, extractor.extract(c))
    counts = Counts()
    counts.add(tally)
    found = {k: e[0] for k, e in counts.rows(keep_row(1))}
    quality = evaluate(found, captions, min_mentions=3, tolerance=0.10)
    assert quality["n_relevant"] >= 300
    assert quality["precision"] >= 0.90, quality["false_people"]
    assert quality["recall"] >= 0.90, quality["missed"]
    assert quality["counts_within"] >= 0.90, quality["miscounted"]


@pytest.mark.parametrize("file, floor", [("captions_heldout.tsv", 0.92), ("captions_heldout2.tsv", 0.85)])
def test_hand_written_captions_of_real_people_and_traps(extractor, file, floor):
    """Captions written by hand in the styles of web alt text, news captions and stock photo titles. The first
    file found six bugs and was then fixed against (a regression test now); the second was measured once, as
    written (precision and recall 0.90 over its 30 mentions), and is kept as a floor."""
    from pathlib import Path

    from idia.world.caption_set import person_key
    lines = (Path(__file__).parent / "data" / file).read_text(encoding="utf-8").splitlines()
    rows = [line.split("\t") for line in lines if line and not line.startswith("#")][1:]
    tp = fp = fn = 0
    for caption, people in rows:
        want = {person_key(p) for p in people.split(";") if p}
        got = {m.key for m in extractor.extract(caption) if m.strong}
        tp, fp, fn = tp + len(want & got), fp + len(got - want), fn + len(want - got)
    assert tp / (tp + fp) >= floor and tp / (tp + fn) >= floor, (tp, fp, fn)
