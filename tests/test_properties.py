"""Property tests: each rule against its slow, obvious twin, on inputs Hypothesis draws."""

import unicodedata
from collections import Counter

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from idia.attack.decide.calibrate import NullCalibration
from idia.attack.decide.evidence import NO_VOTE, majority_votes
from idia.attack.inputs.names import read_name_file
from idia.compliance.config import load_config
from idia.errors import InputError
from idia.names import name_key, normalize_name

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def predictions(draw):
    n_people = draw(st.integers(1, 5))
    n_prompts = draw(st.integers(1, 4))
    n_candidates = draw(st.integers(1, 5))
    owner = draw(st.lists(st.integers(0, n_people - 1), min_size=0, max_size=14))
    pred = draw(st.lists(st.lists(st.integers(0, n_candidates - 1), min_size=n_prompts, max_size=n_prompts),
                         min_size=len(owner), max_size=len(owner)))
    return (np.array(owner, dtype=np.int64), np.array(pred, dtype=np.int64).reshape(len(owner), n_prompts),
            n_people, n_candidates)


@FAST
@given(predictions())
def test_majority_votes_equal_a_plain_loop(case):
    owner, pred, n_people, n_candidates = case
    vote, count, tie = majority_votes(owner, pred, n_people, n_candidates)
    for person in range(n_people):
        for j in range(pred.shape[1]):
            answers = Counter(int(pred[r, j]) for r in range(len(owner)) if owner[r] == person)
            if not answers:
                assert vote[person, j] == NO_VOTE and count[person, j] == 0 and not tie[person, j]
                continue
            top = max(answers.values())
            leaders = [c for c, k in answers.items() if k == top]
            assert count[person, j] == top
            assert bool(tie[person, j]) == (len(leaders) > 1)
            assert vote[person, j] == (leaders[0] if len(leaders) == 1 else NO_VOTE)


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


name_text = st.text(st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")), min_size=1, max_size=20)


@FAST
@given(name_text)
def test_name_normalisation_is_idempotent_and_ignores_unicode_form(name):
    once = normalize_name(name)
    assert normalize_name(once) == once
    assert once == normalize_name(unicodedata.normalize("NFD", name)) == normalize_name(
        unicodedata.normalize("NFC", name))
    assert unicodedata.is_normalized("NFC", once)
    assert name_key(unicodedata.normalize("NFD", name)) == name_key(name)
    assert name_key(" ".join(once.casefold().split()) + "  ") == name_key(name)  # case and spacing blind


@FAST
@given(st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzëöé "), min_size=1, max_size=20))
def test_name_keys_of_case_variants_are_equal(name):
    assert name_key(name.upper()) == name_key(name.swapcase()) == name_key(unicodedata.normalize("NFD", name))


@FAST
@given(st.lists(st.text(st.sampled_from("aAeEzZëË öÖ-"), min_size=1, max_size=8), min_size=1, max_size=6))
def test_a_name_file_refuses_exactly_the_names_equal_after_nfc_casefold_and_spacing(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("names") / "names.txt"
    spelled = [unicodedata.normalize("NFD" if i % 2 else "NFC", line) for i, line in enumerate(lines)]
    path.write_text("\n".join(spelled) + "\n", encoding="utf-8")
    keys = [unicodedata.normalize("NFC", " ".join(unicodedata.normalize("NFC", s).split()).casefold())
            for s in spelled]
    keys = [k for k in keys if k and not k.startswith("#")]
    if len(set(keys)) < len(keys):
        with pytest.raises(InputError, match="duplicate name"):
            read_name_file(path)
    else:
        assert [name_key(n) for n in read_name_file(path)] == keys


# Control characters are not names (and PyYAML writes U+0085 raw, which YAML then reads as a line break).
safe_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_categories=("Cc",)),
                    min_size=1, max_size=12).filter(lambda s: s.strip() and s == s.strip())
rel_path = st.lists(st.text("abcxyz-_0123456789", min_size=1, max_size=6), min_size=1, max_size=3).map("/".join)


@st.composite
def configs(draw):
    cfg = {"model": "world", "people": draw(rel_path), "output": draw(rel_path),
           "seed": draw(st.integers(0, 2**31)), "n_candidates": draw(st.integers(2, 5000))}
    for key in ("reference", "labels", "candidates", "prompts", "utility"):
        if draw(st.booleans()):
            cfg[key] = draw(rel_path)
    if draw(st.booleans()):
        cfg["max_images"] = draw(st.integers(1, 100))
    cfg["attack"] = draw(st.sampled_from([{}, {"tau": 2}, {"target_fpr": 0.05}]))
    defenses = draw(st.lists(st.fixed_dictionaries({"kind": st.just("redact"), "names": rel_path,
                                                    "neutral": safe_text, "steps": st.integers(1, 500)}),
                             max_size=2))
    cfg["defenses"] = defenses
    reports = [{"kind": "audit"}] + draw(st.lists(st.fixed_dictionaries(
        {"kind": st.just("takedown"), "person": safe_text, "include_photos": st.booleans()}), max_size=3))
    if defenses:
        reports.append({"kind": "mitigation", "defense": draw(st.integers(0, len(defenses) - 1))})
    cfg["reports"] = reports
    return cfg


@FAST
@given(configs())
def test_yaml_configs_round_trip(tmp_path_factory, cfg):
    folder = tmp_path_factory.mktemp("cfg")
    path = folder / "audit.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    got = load_config(path)
    base = folder.absolute()
    a = got.attack
    for key in ("people", "reference", "labels", "candidates", "prompts"):
        assert getattr(a, key) == (base / cfg[key] if key in cfg else None)
    for key in ("output", "utility"):
        assert getattr(got, key) == (base / cfg[key] if key in cfg else None)
    assert (a.model, a.seed, a.n_candidates, a.max_images) == (
        "world", cfg["seed"], cfg["n_candidates"], cfg.get("max_images"))
    assert (a.tau, a.target_fpr) == (cfg["attack"].get("tau"), cfg["attack"].get("target_fpr"))
    assert [(d.kind, d.names, d.neutral, d.steps) for d in got.defenses] == [
        ("redact", base / d["names"], d["neutral"], d["steps"]) for d in cfg["defenses"]]
    assert [(r.kind, r.person, r.include_photos, r.defense) for r in got.reports] == [
        (r["kind"], r.get("person"), r.get("include_photos", False), r.get("defense", 0)) for r in cfg["reports"]]
