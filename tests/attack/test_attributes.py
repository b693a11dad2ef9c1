"""People's attributes (--attributes): the file read strictly, each group of people with the same given gender and
origin asked among one list of distractors matched to it, drawn once and encoded once, and every person's result
the same as asking them alone among that list."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from idia_testkit import noise_people

from idia.attack.decide.evidence import gather_evidence
from idia.attack.decide.per_person import OthersSample
from idia.attack.inputs import names
from idia.attack.inputs.distractors import build_candidates, draw_distractors, make_distractors
from idia.attack.inputs.question import PER_PERSON, ask, group_seed
from idia.attack.run import run_attack
from idia.attack.settings import AttackSettings
from idia.errors import InputError

PEOPLE = ["Ada Quill", "Bo Rask", "Cy Tamm", "Di Umber", "Ed Vance", "Flo Wren"]


def _attributes(tmp_path, text, name="attributes.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_attributes_file_is_read_with_the_names_matched_as_everywhere(tmp_path):
    path = _attributes(tmp_path, "\ufeffname,gender,origin\n ada  QUILL ,F,\nBo Rask,,east_asia\n\nCy Tamm,m,"
                                 "Europe_West\nDi Umber,,\n")
    assert names.read_attributes(path, PEOPLE) == {"Ada Quill": ("f", None), "Bo Rask": (None, "east_asia"),
                                                   "Cy Tamm": ("m", "europe_west"), "Di Umber": (None, None)}


@pytest.mark.parametrize("text,message", [
    ("name,sex,origin\n", "attributes.csv:1: the first line must be the header name,gender,origin"),
    ("name,gender,origin\nAda Quill,f\n", "attributes.csv:2: expected 3 fields (name,gender,origin), got 2"),
    ("name,gender,origin\nNo Body,f,\n", "attributes.csv:2: 'No Body' is not among the audited or reference"),
    ("name,gender,origin\nAda Quill,x,\n", "attributes.csv:2: gender must be f, m or empty, got 'x'"),
    ("name,gender,origin\nAda Quill,f,atlantis\n", "attributes.csv:2: unknown origin 'atlantis'; choose one of"),
    ("name,gender,origin\nAda Quill,f,\n\nada quill,m,\n", "attributes.csv:4: 'ada quill' is listed twice (first on "
                                                           "line 2)"),
])
def test_attributes_errors_are_one_line_naming_file_and_line(tmp_path, text, message):
    with pytest.raises(InputError) as e:
        names.read_attributes(_attributes(tmp_path, text), PEOPLE)
    assert message in str(e.value) and "\n" not in str(e.value)


GIVEN = {"Ada Quill": ("f", None), "Cy Tamm": ("f", None), "Bo Rask": ("m", "europe_west"),
         "Di Umber": (None, "east_asia")}


def test_people_with_the_same_attributes_share_one_matched_list():
    q = ask(PEOPLE, 50, seed=3, attributes=GIVEN)
    assert q.mode == PER_PERSON  # auto: attributes need the per-person question, however few people
    assert [g.id for g in q.groups] == ["default", "gender=f", "gender=m,origin=europe_west", "origin=east_asia"]
    assert [q.group(i).id for i in range(len(PEOPLE))] == ["gender=f", "gender=m,origin=europe_west", "gender=f",
                                                            "origin=east_asia", "default", "default"]
    tags, last_origin = names.first_name_tags(), names.last_name_origins()
    for g in q.groups:
        assert len(g.names) == len(set(g.names)) == 49 and not set(g.names) & set(PEOPLE)
        firsts = [tags[n.split(" ")[0]] for n in g.names]
        if g.gender:
            assert all(sex in (g.gender, "u") for sex, _ in firsts)
        else:  # the default and origin-only draws are balanced by sex, exactly
            assert [sex for sex, _ in firsts].count("f") == 24 and [sex for sex, _ in firsts].count("m") == 25
        if g.origin:
            assert all(o == g.origin for _, o in firsts)
            assert all(last_origin[n.split(" ")[-1]] == g.origin for n in g.names)
    assert q.groups[0].names == draw_distractors(49, set(PEOPLE), 3)  # the default draw, seeded as before
    assert q.groups[1].seed == group_seed(3, "f", None) and q.groups[1].names == draw_distractors(
        49, set(PEOPLE), group_seed(3, "f", None), gender="f")
    # Each person's candidates are their group's distractors, then their own name.
    assert q.name_of(0, 0) == q.groups[1].names[0] and q.name_of(0, 49) == "Ada Quill"
    assert q.name_of(4, 0) == q.groups[0].names[0] and q.n_candidates == 50
    assert q.distractor_mask.tolist() == [True] * 49 + [False]
    block = q.distractors_block()
    assert [(g["id"], g["people"], g["how"]) for g in block["groups"]] == [
        ("default", 2, "balanced"), ("gender=f", 2, "matched"), ("gender=m,origin=europe_west", 1, "matched"),
        ("origin=east_asia", 1, "matched")]
    assert block["groups"][2]["counts"]["origin"] == {"europe_west": 49}
    assert block["how"] == "balanced" and block["n"] == 49  # the top level: the first group


def test_groups_are_deterministic_and_independent_of_who_else_is_audited():
    q = ask(PEOPLE, 30, seed=1, attributes=GIVEN)
    again = ask(PEOPLE, 30, seed=1, attributes=GIVEN)
    assert [g.names for g in q.groups] == [g.names for g in again.groups]
    assert q.sha256 == again.sha256 != ask(PEOPLE, 30, seed=2, attributes=GIVEN).sha256
    # Ada asked alone, with the same listed names, gets the same matched list.
    alone = ask(["Ada Quill"], 30, seed=1, listed=PEOPLE, attributes={"Ada Quill": ("f", None)})
    assert [g.id for g in alone.groups] == ["gender=f"] and alone.groups[0].names == q.groups[1].names
    assert ask(PEOPLE, 30, seed=1, attributes={"Ada Quill": (None, None)}).groups[0].id == "default"


def test_without_attributes_the_per_person_question_is_unchanged_and_uniform_is_the_old_draw():
    q = ask(PEOPLE, 30, "per-person", seed=4, draw="uniform")
    assert len(q.groups) == 1 and q.shared_names == make_distractors(29, set(PEOPLE), 4)
    assert q.distractors_block()["how"] == "uniform"
    shared = ask(PEOPLE, 30, seed=4, draw="uniform")
    assert shared.shared_names == build_candidates(PEOPLE, 30, 4, draw="uniform").names


def test_matched_draws_the_lists_cannot_fill_are_one_line():
    with pytest.raises(InputError) as e:
        ask(PEOPLE, 1000, seed=0, attributes={"Ada Quill": ("f", "south_asia")})
    msg = str(e.value)
    assert msg.startswith("--attributes: no 999 distractors for gender=f,origin=south_asia (e.g. 'Ada Quill')")
    assert "lower --n-candidates" in msg and "\n" not in msg
    with pytest.raises(InputError, match="--attributes needs the per-person question"):
        ask(PEOPLE, 30, "shared", attributes=GIVEN)


@pytest.mark.parametrize("extra,conflict", [({"candidate_set": "shared"}, "--candidate-set shared"),
                                            ({"candidates": "c.txt"}, "--candidates"),
                                            ({"distractors": "d.txt"}, "--distractors"),
                                            ({"aliases": "a.yaml"}, "--aliases")])
def test_attributes_conflicts_are_refused_before_anything_is_read(tmp_path, extra, conflict):
    s = AttackSettings(model="world", people=tmp_path, attributes=tmp_path / "a.csv", **extra)
    with pytest.raises(InputError) as e:
        s.validate()
    assert str(e.value).endswith(f"cannot be combined with {conflict}")


def test_grouped_evidence_equals_each_group_asked_alone():
    """gather_evidence and the name-prior sample with several distractor lists give every person exactly what a
    run with their group's list alone gives."""
    rng = np.random.default_rng(0)
    n_people, per, n_prompts, n_d, dim = 7, 3, 4, 9, 16

    def unit(*shape):
        x = rng.normal(size=shape).astype(np.float32)
        return x / np.linalg.norm(x, axis=-1, keepdims=True)

    images, owner = unit(n_people * per, dim), np.repeat(np.arange(n_people), per)
    own = np.einsum("nd,pnd->np", images, unit(n_prompts, n_people * per, dim))
    texts = [unit(n_prompts, n_d, dim) for _ in range(3)]
    group_of = np.array([0, 2, 1, 2, 0, 0, 1])
    true = np.full(n_people, n_d)
    ev = gather_evidence(images, owner, true, texts, 100.0, own_similarity=own, group_of=group_of, chunk=5)
    own_text = unit(n_prompts, n_people, dim)  # each person's own name in every prompt
    prior = OthersSample(images, owner, texts, 100.0, n_people, group_of, size=12, seed=1)
    prior.add_block(0, own_text)
    for g, text in enumerate(texts):
        alone = gather_evidence(images, owner, true, text, 100.0, own_similarity=own)
        single = OthersSample(images, owner, [text], 100.0, n_people, size=12, seed=1)
        single.add_block(0, own_text)
        rows, people = np.isin(owner, np.flatnonzero(group_of == g)), group_of == g
        # Answers exactly; scores to float32 rounding (a matrix product over fewer rows may round differently).
        for field in ("prediction", "true_rank", "top_index"):
            np.testing.assert_array_equal(getattr(ev, field)[rows], getattr(alone, field)[rows])
        for field in ("true_log_prob", "image_candidate_log_prob"):
            np.testing.assert_allclose(getattr(ev, field)[rows], getattr(alone, field)[rows], rtol=1e-5)
        for field in ("score", "vote"):
            np.testing.assert_array_equal(getattr(ev, field)[people], getattr(alone, field)[people])
        np.testing.assert_allclose(ev.mean_log_prob[people], alone.mean_log_prob[people], rtol=1e-5)
        for field in ("pick", "mean_lp", "mean_logit"):
            np.testing.assert_allclose(getattr(prior, field)[people], getattr(single, field)[people], rtol=1e-5)
        for i in np.flatnonzero(people):
            np.testing.assert_allclose(prior.distractor_means(i), single.distractor_means(i), rtol=1e-5)


# --- through the whole attack (the world's model on photos of noise: the pipeline does not care what they show) --

def _people(root, people=PEOPLE, n_photos=3):
    return noise_people(root, n_photos=n_photos, names=list(people))


def _settings(people, tmp_path, **kw):
    from idia.world import shipped_model_dir
    return AttackSettings(model=str(shipped_model_dir()), people=people, cache_dir=tmp_path / "cache",
                          progress=False, workers=0, **kw)


ATTRIBUTES = "name,gender,origin\nAda Quill,f,\nCy Tamm,f,\nBo Rask,m,europe_west\n"


def test_a_matched_person_scores_as_if_asked_alone_among_their_groups_list(world_model, tmp_path):
    people = _people(tmp_path / "people")
    attributes = _attributes(tmp_path, ATTRIBUTES)
    run = run_attack(_settings(people, tmp_path, n_candidates=20, attributes=attributes), loaded=world_model)
    r = run.result
    assert r.candidates["question"] == "per-person" and r.manifest["inputs"]["attributes_sha256"]
    groups = {g["id"]: g for g in r.distractors["groups"]}
    assert {p.name: p.distractor_group for p in r.persons} == {
        "Ada Quill": "gender=f", "Cy Tamm": "gender=f", "Bo Rask": "gender=m,origin=europe_west",
        "Di Umber": "default", "Ed Vance": "default", "Flo Wren": "default"}
    assert {k: g["people"] for k, g in groups.items()} == {"default": 3, "gender=f": 2,
                                                            "gender=m,origin=europe_west": 1}
    # Text is encoded once per group (19 distractors each), then the people's own names: never once per person.
    blocks = [b["n_names"] for b in r.encoding["caches"]["text_blocks"]]
    assert blocks == [19, 19, 19, len(PEOPLE)]
    lists = {g.id: g.names for g in run.question.groups}
    for person in r.persons:
        if person.distractor_group == "default":
            continue
        assert person.evidence["permutation"]["n_distractors"] == 19
        alone = tmp_path / f"alone-{person.name}"
        (alone / person.name).mkdir(parents=True)
        for f in (people / person.name).iterdir():
            (alone / person.name / f.name).write_bytes(f.read_bytes())
        cand = tmp_path / f"cand-{person.name}.txt"
        cand.write_text("\n".join(lists[person.distractor_group] + [person.name]) + "\n")
        shared = run_attack(_settings(alone, tmp_path, candidates=cand, candidate_set="shared"),
                            loaded=world_model).result.persons[0]
        assert shared.score == person.score and shared.member == person.member
        # the name side is the same question; the face side compares with whoever else is audited (here nobody)
        assert shared.evidence["permutation"]["p_value"] == person.evidence["permutation"]["p_value"]
        assert [v.vote for v in shared.votes] == [v.vote for v in person.votes]
        assert shared.mean_log_prob == pytest.approx(person.mean_log_prob, abs=1e-5)
    # The same seed draws the same lists; the default list is the run without attributes'.
    again = run_attack(_settings(people, tmp_path, n_candidates=20, attributes=attributes), loaded=world_model)
    assert [g.names for g in again.question.groups] == [g.names for g in run.question.groups]
    plain = run_attack(_settings(people, tmp_path, n_candidates=20, candidate_set="per-person"), loaded=world_model)
    assert plain.question.shared_names == lists["default"]
    assert [p.p_value for p in plain.result.persons][3:] == [p.p_value for p in r.persons][3:]


@pytest.mark.slow
def test_cli_attack_with_attributes_and_the_takedown_says_how(tmp_path):
    from idia.compliance.cli import main
    people = _people(tmp_path / "people", n_photos=2)
    attributes = _attributes(tmp_path, ATTRIBUTES)
    out = tmp_path / "out"
    result = CliRunner().invoke(main, ["attack", "--model", "world", "--people", str(people), "--attributes",
                                       str(attributes), "--n-candidates", "12", "--workers", "0", "--cache-dir",
                                       str(tmp_path / "cache"), "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "results.json").read_text())
    assert [g["id"] for g in record["distractors"]["groups"]] == ["default", "gender=f",
                                                                  "gender=m,origin=europe_west"]
    assert record["persons"][1]["name"] == "Bo Rask"
    assert record["persons"][1]["distractor_group"] == "gender=m,origin=europe_west"
    from idia.compliance.report import render_html
    html = render_html("takedown", record, person="Bo Rask")
    assert "matched to the person: male first names (unisex ones included), first names and surnames of origin " \
           "europe west" in html and "By origin: europe_west 11." in html
    assert "half female and half male first names" in render_html("takedown", record, person="Di Umber")
    refused = CliRunner().invoke(main, ["attack", "--model", "world", "--people", str(people), "--attributes",
                                        str(attributes), "--candidate-set", "shared", "--out", str(tmp_path / "o")])
    assert refused.exit_code == 2 and refused.output.count("\n") == 1
    assert "cannot be combined with --candidate-set shared" in refused.output
