"""Distractors matched to the person, users' distractor pools, and the aliases file."""

import pytest

from idia.attack.inputs import names
from idia.attack.inputs.distractors import (
    DEFAULT_DRAW,
    build_candidates,
    describe_distractors,
    distractors_from_file,
    draw_distractors,
    make_distractors,
    make_matched_distractors,
)
from idia.errors import InputError


def test_make_distractors_is_unchanged():
    """The pre-existing generator keeps its draws (values taken from the code before matching was added), and
    the uniform draw is it."""
    assert make_distractors(3, set(), 0) == ["Tariq Ochieng", "Leticia Girma", "Hakan Asante"]
    assert build_candidates(["Ada Lovelace"], 5, seed=0, draw="uniform").names == \
        ['Anh Ahmadi', 'Ada Lovelace', 'Tariq Ochieng', 'Leticia Girma', 'Hakan Asante']
    assert draw_distractors(40, {"Ada Lovelace"}, 5, "uniform") == \
        make_distractors(40, {"Ada Lovelace"}, 5)


@pytest.mark.parametrize("n", [2, 7, 999])
def test_the_default_draw_is_exactly_half_female_half_male(n):
    tags = names.first_name_tags()
    got = draw_distractors(n, {"Ada Lovelace"}, seed=2)
    assert DEFAULT_DRAW == "balanced" and len(set(got)) == n
    sexes = [tags[name.split(" ")[0]][0] for name in got]
    assert sexes.count("f") == n // 2 and sexes.count("m") == n - n // 2
    assert build_candidates(["Ada Lovelace"], n + 1, seed=2).names != \
        build_candidates(["Ada Lovelace"], n + 1, seed=2, draw="uniform").names
    block = describe_distractors(got, "balanced", 2)
    assert block["counts"]["gender"] == {k: v for k, v in (("f", n // 2), ("m", n - n // 2)) if v}
    assert "half female and half male first names" in block["description"]


def test_every_bundled_name_is_tagged_once():
    tags, origins = names.first_name_tags(), names.last_name_origins()
    assert sorted(tags) == sorted(names.first_names())
    assert sorted(origins) == sorted(names.last_names())
    assert {g for g, _ in tags.values()} == {"f", "m", "u"}
    assert set(o for _, o in tags.values()) <= set(names.origins())


@pytest.mark.parametrize("gender,origin", [("f", None), ("m", "europe_east"), (None, "east_asia"), ("f", "africa_west")])
def test_matched_distractors_have_the_asked_gender_and_origin(gender, origin):
    tags, origins = names.first_name_tags(), names.last_name_origins()
    exclude = {"Aoi Kim"}
    got = make_matched_distractors(60, exclude, seed=3, gender=gender, origin=origin)
    assert len(got) == len(set(got)) == 60 and "Aoi Kim" not in got
    for name in got:
        first, last = name.split(" ")
        if gender:
            assert tags[first][0] in (gender, "u")
        if origin:
            assert tags[first][1] == origin and origins[last] == origin
    assert got == make_matched_distractors(60, exclude, seed=3, gender=gender, origin=origin)
    assert got != make_matched_distractors(60, exclude, seed=4, gender=gender, origin=origin)


def test_balanced_by_sex_without_a_gender():
    tags = names.first_name_tags()
    got = make_matched_distractors(200, set(), seed=1)
    female = sum(tags[n.split(" ")[0]][0] == "f" for n in got)
    male = sum(tags[n.split(" ")[0]][0] == "m" for n in got)
    assert female == male == 100  # unisex names serve a matched gender only, so the halves are exact
    d = describe_distractors(got, "matched", 1)
    assert d["counts"]["gender"] == {"f": 100, "m": 100}
    assert d["n"] == 200 and sum(d["counts"]["origin"].values()) == 200


def test_impossible_matches_are_refused_in_one_line():
    with pytest.raises(InputError, match="no f first names of origin 'south_asia'"):
        make_matched_distractors(5, set(), 0, gender="f", origin="south_asia")
    with pytest.raises(InputError, match="cannot draw 100 distinct"):
        make_matched_distractors(100, set(), 0, gender="m", origin="latin_america")
    with pytest.raises(InputError, match="unknown distractor origin 'atlantis'"):
        make_matched_distractors(5, set(), 0, origin="atlantis")
    with pytest.raises(InputError, match="gender must be"):
        make_matched_distractors(5, set(), 0, gender="x")


def test_a_tight_pool_is_drawn_exactly():
    got = make_matched_distractors(48, set(), 0, gender="m", origin="latin_america")
    assert len(set(got)) == 48  # every remaining combination, no endless loop


def test_user_distractor_pool(tmp_path):
    pool = tmp_path / "pool.txt"
    pool.write_text("# my pool\nAna Silva\nBo Chen\nCy Young\nDee Dee\n", encoding="utf-8")
    assert distractors_from_file(pool, None, {"bo chen"}, 0) == ["Ana Silva", "Cy Young", "Dee Dee"]
    two = distractors_from_file(pool, 2, set(), 7)
    assert len(two) == 2 and two == distractors_from_file(pool, 2, set(), 7)
    with pytest.raises(InputError, match="pool.txt: 9 distractors needed but the pool holds 4"):
        distractors_from_file(pool, 9, set(), 0)
    with pytest.raises(InputError, match="no such file"):
        distractors_from_file(tmp_path / "nope.txt", 2, set(), 0)


def test_aliases_yaml_and_tsv(tmp_path):
    y = tmp_path / "aliases.yaml"
    y.write_text("Robert Smith: [Bob Smith, Rob  Smith]\nAna Lima: Annie Lima\n", encoding="utf-8")
    assert names.read_aliases(y) == {"Robert Smith": ["Bob Smith", "Rob Smith"], "Ana Lima": ["Annie Lima"]}
    t = tmp_path / "aliases.tsv"
    t.write_text("# name\taliases\nRobert Smith\tBob Smith\tRobbie Smith\n", encoding="utf-8")
    assert names.read_aliases(t) == {"Robert Smith": ["Bob Smith", "Robbie Smith"]}


@pytest.mark.parametrize("filename,text,message", [
    ("a.tsv", "Robert Smith\n", "a.tsv:1: expected a name and at least one alias"),
    ("a.tsv", "A B\tC D\nE F\tC D\n", "a.tsv:2: 'C D' is also a name of 'A B'"),
    ("a.tsv", "A B\tC D\nA B\tE F\n", "a.tsv:2: 'A B' is listed twice"),
    ("a.yaml", "A B: [C D\n", "a.yaml:2: not valid YAML"),
    ("a.yaml", "- A B\n", "a.yaml: aliases must be a mapping"),
    ("a.yaml", "A B: {x: 1}\n", "a.yaml: entry 'A B' must map a name to a list of names"),
])
def test_aliases_errors_are_one_line(tmp_path, filename, text, message):
    path = tmp_path / filename
    path.write_text(text, encoding="utf-8")
    with pytest.raises(InputError) as e:
        names.read_aliases(path)
    assert message in str(e.value) and "\n" not in str(e.value)
