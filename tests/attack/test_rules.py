"""The rules an attack can decide by, in the pipeline: the candidate-permutation test (the default without
reference people), the paper's rule, the calibrated score; and the evidence every person's record carries."""

import json

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from idia.attack.decide.calibrate import NullCalibration
from idia.attack.run import run_attack
from idia.attack.settings import AttackSettings
from idia.compliance.cli import main as cli_main
from idia.errors import InputError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _people(root, names, n_photos=2, seed=0):
    rng = np.random.default_rng(seed)
    for name in names:
        (root / name).mkdir(parents=True)
        for j in range(n_photos):
            Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(root / name / f"{j}.png")
    return root


NAMES = ["Ada Quill", "Bo Rask", "Cy Tamm", "Di Umber", "Ed Vance"]


def _settings(people, tmp_path, **kw):
    from idia.world import shipped_model_dir
    return AttackSettings(model=str(shipped_model_dir()), people=people, cache_dir=tmp_path / "cache",
                          progress=False, workers=0, **kw)


@pytest.mark.slow
def test_permutation_fpr_is_at_most_alpha_and_it_beats_the_paper_rule_on_the_world(paper_run):
    """Measured on the shipped world (100 members, 100 non-members, 10 photos, 1,000 candidates, distractors
    balanced by sex): at alpha 0.01, 96 of 100 members and 0 of 100 non-members flagged; at 0.05, 100 and 5; the
    paper rule flags 86 members. (Drawn uniformly, as before: 97 and 0; 100 and 3; 85.)"""
    persons = paper_run.result.persons
    member = np.array([p.label for p in persons])
    p = np.array([p.evidence["permutation"]["p_value"] for p in persons])
    paper = np.array([p.member for p in persons])
    for alpha in (0.01, 0.05):
        fpr = float(np.mean(p[~member] <= alpha))
        print(f"\nalpha {alpha}: TPR {np.mean(p[member] <= alpha):.2f}, FPR {fpr:.2f}")
        assert fpr <= alpha  # measured: 0.00 at 0.01 (margin 0.01), 0.05 at 0.05 (margin 0)
    assert np.mean(p[member] <= 0.01) > np.mean(paper[member]) + 0.05  # measured 0.96 vs 0.86


def test_without_reference_the_permutation_test_decides_and_the_paper_score_stays(world_model, tmp_path):
    people = _people(tmp_path / "people", NAMES)
    run = run_attack(_settings(people, tmp_path, n_candidates=40), loaded=world_model)
    r = run.result  # five people: the face side cannot reach the level, so auto falls back to the name side
    assert r.rule["decided_by"] == "permutation" and "with 5 people the face side" in r.rule["explanation"]
    assert r.rule["level"]["kind"] == "fdr" and r.rule["level"]["q"] == 0.05
    assert "distractors" in r.rule["assumption"]
    assert r.distractors["how"] == "balanced" and r.distractors["n"] == 35  # 40 names minus the 5 audited
    assert r.distractors["counts"]["gender"] == {"f": 17, "m": 18}  # balanced by sex, the default
    for p in r.persons:
        ev = p.evidence
        assert p.p_value == ev["permutation"]["p_value"] and p.member == ev["permutation"]["flagged"]
        assert ev["paper"]["score"] == p.score and ev["permutation"]["n_distractors"] == 35
        assert set(ev["stability"]) >= {"agreement_permutation", "agreement_paper", "tie_share", "score_interval"}
        assert ev["prior"]["pick_rate_others"] is not None
    paper = run_attack(_settings(people, tmp_path, n_candidates=40, rule="paper"), loaded=world_model).result
    assert paper.rule["decided_by"] == "paper"
    assert [p.score for p in paper.persons] == [p.score for p in r.persons]
    assert [p.evidence["permutation"] for p in paper.persons] == [p.evidence["permutation"] for p in r.persons]


def test_auto_decides_by_name_and_face_only_where_the_face_bank_reaches_the_level():
    from idia.attack.decide.rules import choose_rule
    default = AttackSettings(model="world", people=".")
    assert choose_rule(default, False, 200, 200).rule.name == "name-and-face"  # BH at q 0.05: 199 faces suffice
    assert choose_rule(default, False, 20, 20).rule.name == "name-and-face"  # 1/20 <= 0.05
    small = choose_rule(default, False, 19, 19)
    assert small.rule.name == "permutation" and "audit at least 20 people" in small.why
    one = choose_rule(default, False, 1, 1)  # one person: per person at alpha 0.01, no other face to compare
    assert one.rule.name == "permutation" and "cannot reach 0.01" in one.why
    assert choose_rule(default, True, 100, 1).rule.name == "name-and-face"  # reference people join the face bank
    explicit = AttackSettings(model="world", people=".", rule="name-and-face")
    assert choose_rule(explicit, False, 1, 1).rule.name == "name-and-face"  # asked for: kept (cannot_flag says why)


def test_rule_and_threshold_conflicts_are_one_line(world_model, tmp_path):
    people = _people(tmp_path / "people", NAMES[:2])
    with pytest.raises(InputError, match="--rule calibrated needs --reference"):
        run_attack(_settings(people, tmp_path, rule="calibrated"), loaded=world_model)
    with pytest.raises(InputError, match="--tau is the paper rule's threshold"):
        run_attack(_settings(people, tmp_path, rule="permutation", tau=2), loaded=world_model)
    result = CliRunner().invoke(cli_main, [
        "attack", "--model", "world", "--people", str(people), "--alpha", "0", "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "--alpha must be between 0 and 1" in result.output


def test_the_per_person_name_prior_equals_brute_force_on_all_other_photos(world_model, tmp_path):
    """With the sample holding every photo, the per-person question's prior is exactly what asking each name of
    everyone else's photos among the same distractors gives."""
    from idia.attack.decide.per_person import OthersSample
    people = _people(tmp_path / "people", NAMES, n_photos=3)
    s = _settings(people, tmp_path, n_candidates=9, candidate_set="per-person")
    original = OthersSample.__init__.__defaults__
    OthersSample.__init__.__defaults__ = (10_000, 0)  # sample size >= all photos
    try:
        run = run_attack(s, loaded=world_model)
    finally:
        OthersSample.__init__.__defaults__ = original
    from idia.attack.encode.encoder import Encoder
    enc = Encoder(world_model, device="cpu", use_cache=False, progress=False)
    paths, hashes, owner = run.scan.photo_table()
    img = enc.encode_photos(paths)
    templates = run.scan.templates
    dis = run.question.shared_names
    scale = world_model.logit_scale
    for i, person in enumerate(run.result.persons):
        text = enc.prompt_embeddings(templates, dis + [person.name])  # [P, D+1, d]
        others = img[owner != i]
        logits = scale * np.einsum("kd,pcd->kpc", others, text)
        lp = logits - np.logaddexp.reduce(logits.astype(np.float64), axis=2, keepdims=True)
        mean = lp.mean(axis=(0, 1))  # [D+1]
        p_brute = (1 + np.sum(mean[:-1] >= mean[-1])) / (1 + len(dis))
        picks = (logits.argmax(axis=2) == len(dis)).mean()
        prior = person.evidence["prior"]
        assert prior["p_value_others"] == pytest.approx(p_brute)
        assert prior["mean_score_others"] == pytest.approx(mean[-1], abs=1e-4)
        assert prior["pick_rate_others"] == pytest.approx(picks, abs=1e-6)  # the record rounds to 6 places


def test_aliases_are_tried_and_the_report_says_which_name_the_model_knows(world_model, tmp_path):
    people = _people(tmp_path / "people", NAMES[:3])
    aliases = tmp_path / "aliases.yaml"
    aliases.write_text("Ada Quill: [Adelaide Quill, A. Quill]\n")
    r = run_attack(_settings(people, tmp_path, n_candidates=30, aliases=aliases), loaded=world_model).result
    ada = next(p for p in r.persons if p.name == "Ada Quill")
    assert ada.evidence["aliases"]["tried"] == ["Ada Quill", "Adelaide Quill", "A. Quill"]
    assert ada.evidence["aliases"]["best"] in ada.evidence["aliases"]["tried"]
    assert ada.p_value == ada.evidence["aliases"]["p_value"]
    assert r.distractors["n"] == 30 - 5  # the aliases are candidates, never distractors
    with pytest.raises(InputError, match="--aliases needs the shared candidate list"):
        run_attack(_settings(people, tmp_path, n_candidates=30, aliases=aliases, candidate_set="per-person"),
                   loaded=world_model)


def test_a_distractor_pool_is_drawn_from_and_recorded(world_model, tmp_path):
    people = _people(tmp_path / "people", NAMES[:2])
    pool = tmp_path / "pool.txt"
    pool_names = [f"Pool{chr(65 + i)} Person{chr(65 + j)}" for i in range(6) for j in range(6)]
    pool.write_text("\n".join(pool_names) + "\n")
    run = run_attack(_settings(people, tmp_path, n_candidates=12, distractors=pool), loaded=world_model)
    drawn = [n for n in run.question.shared_names if n not in NAMES]
    assert len(drawn) == 10 and set(drawn) <= set(pool_names)
    assert run.result.distractors["how"] == "file" and run.result.distractors["source"] == str(pool)
    assert run.result.manifest["inputs"]["distractors_sha256"]
    record = json.loads(run.result.to_json())
    assert record["persons"][0]["evidence"]["permutation"]["n_distractors"] == 10


@FAST
@given(st.lists(st.integers(-6, 6), min_size=2, max_size=40), st.sampled_from([0.05, 0.1, 0.2, 0.25, 0.5]))
def test_calibrated_threshold_keeps_the_false_positive_rate_by_brute_force(pool, alpha):
    """Exchangeability made concrete: each of the n+1 values in turn is the new non-member and the other n the
    reference people. The share flagged is the exact false-positive probability for this pool; it is at most
    alpha. Ties (small integers) are the hard case. And flagging equals p-value <= alpha."""
    n = len(pool) - 1
    if alpha * (n + 1) < 1:  # too few reference people for this alpha: refused, as it must be
        with pytest.raises(InputError, match="needs at least"):
            NullCalibration(alpha).fit(pool[1:])
        return
    flagged = 0
    for i, new in enumerate(pool):
        cal = NullCalibration(alpha).fit(pool[:i] + pool[i + 1:])
        hit = bool(cal.predict([new])[0])
        assert hit == bool(cal.p_value([new])[0] <= alpha + 1e-12)
        flagged += hit
    assert flagged / len(pool) <= alpha + 1e-12
