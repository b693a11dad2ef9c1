"""Inference-time perturbations: saved and read back whole, refused when edited or fitted on another model, and the
strength sweep's trade-off."""

import csv
import io
import json

import numpy as np
import pytest
from click.testing import CliRunner
from idia_testkit import world_subset

from idia.attack.encode.encoder import Encoder
from idia.attack.run import run_attack
from idia.attack.settings import AttackSettings
from idia.compliance.cli import main
from idia.defense.perturb import NoisePerturbation, ProjectionPerturbation, load_perturbation
from idia.defense.sweep import sweep
from idia.defense.utility import ZeroShotTask
from idia.errors import InputError
from idia.io import sha256_file

N_REDACT = 10


@pytest.mark.parametrize("sha", [None, "", "abc", "missing"])
def test_a_perturbation_without_its_checkpoint_hash_is_refused(tmp_path, sha):
    from idia.defense.perturb import load_perturbation
    data = {"kind": "idia-perturbation", "schema_version": 1, "type": "noise", "settings": {"strength": 0.5, "seed": 0},
            "embed_dim": 4, "names": ["A B"], "checkpoint_sha256": "0" * 64}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    load_perturbation(path)  # the well-formed one loads
    if sha == "missing":
        del data["checkpoint_sha256"]
    else:
        data["checkpoint_sha256"] = sha
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="checkpoint_sha256 must be the SHA-256"):
        load_perturbation(path)


@pytest.fixture(scope="module")
def projection(world_model, redacted_names):
    return ProjectionPerturbation().fit(world_model, redacted_names)


def test_perturbations_round_trip_through_json(projection, world_model, tmp_path):
    rng = np.random.default_rng(0)
    image = rng.standard_normal((7, 64)).astype(np.float32)
    image /= np.linalg.norm(image, axis=1, keepdims=True)
    text = rng.standard_normal((3, 5, 64)).astype(np.float32)
    text /= np.linalg.norm(text, axis=2, keepdims=True)
    noise = NoisePerturbation(strength=0.3, seed=4).fit(world_model, ["Kojo Huang"])
    for p in (projection, noise, ProjectionPerturbation(strength=2.5, side="both").fit(world_model, ["Kojo Huang",
                                                                                                     "Oleg Allen"])):
        back = load_perturbation(p.save(tmp_path / f"{p.kind}.json"))
        read_from = {"file": str(tmp_path / f"{p.kind}.json"),
                     "file_sha256": sha256_file(tmp_path / f"{p.kind}.json")}
        assert type(back) is type(p) and back.describe() == {**p.describe(), **read_from}
        assert np.array_equal(back.transform_image(image), p.transform_image(image))
        assert np.array_equal(back.transform_text(text), p.transform_text(text))
        assert np.allclose(np.linalg.norm(p.transform_image(image), axis=-1), 1, atol=1e-5)
    assert not np.array_equal(noise.transform_image(image), image) and np.array_equal(noise.transform_text(text), text)
    assert len(projection.directions_) == len(projection.names_) == N_REDACT
    d = json.loads((tmp_path / "project.json").read_text())
    assert d["checkpoint_sha256"] == world_model.checkpoint_sha256 and len(d["directions"][0]) == 64


@pytest.mark.parametrize("content, problem", [
    ("{not json", "not a JSON perturbation file"),
    ("[]", "expected a JSON object"),
    ('{"kind": "idia-attack"}', "kind is 'idia-attack'"),
    ("DIRECTIONS", "directions must be"),
    ("ORTHO", "not orthonormal"),
    ("STRENGTH", "settings.strength must be a number"),
])
def test_a_broken_perturbation_file_is_an_input_error_naming_it(projection, tmp_path, content, problem):
    good = json.loads(projection.save(tmp_path / "good.json").read_text())
    if content == "DIRECTIONS":
        good["directions"] = [[1.0, 2.0]]
        content = json.dumps(good)
    elif content == "ORTHO":
        good["directions"] = [good["directions"][0], good["directions"][0]]
        content = json.dumps(good)
    elif content == "STRENGTH":
        good["settings"]["strength"] = "high"
        content = json.dumps(good)
    bad = tmp_path / "bad.json"
    bad.write_text(content, encoding="utf-8")
    with pytest.raises(InputError, match=f"bad.json: .*{problem}"):
        load_perturbation(bad)


def test_projection_lowers_the_redacted_peoples_identification(projection, paper_run, world_model, world_model_dir,
                                                               world_photos, redacted_names):
    cfg = AttackSettings(model=str(world_model_dir), people=world_photos / "people", rule="paper",
                       labels=world_photos / "labels.json",
                       progress=False, command="pytest")
    run = run_attack(cfg, loaded=world_model, perturbation=projection)
    assert run.result.perturbation["kind"] == "project"
    before = {p.name: p for p in paper_run.result.persons}
    after = {p.name: p for p in run.result.persons}
    red_before = sum(before[n].member for n in redacted_names)
    red_after = sum(after[n].member for n in redacted_names)
    others = [n for n, p in before.items() if p.label and n not in redacted_names]
    print(f"\nprojection: redacted {red_before} -> {red_after} of {len(redacted_names)}, other members "
          f"{sum(before[n].member for n in others)} -> {sum(after[n].member for n in others)} of {len(others)}")
    assert red_after < red_before
    assert sum(after[n].score for n in redacted_names) < 0.5 * sum(before[n].score for n in redacted_names)


def test_sweep_has_a_row_per_strength_and_says_when_it_costs_more_than_it_protects(world_model, world_model_dir,
                                                                                   world_photos, redacted_names,
                                                                                   tmp_path):
    cfg = AttackSettings(model=str(world_model_dir), people=world_photos / "people", rule="paper",
                         labels=world_photos / "labels.json", max_images=3, progress=False, command="pytest")
    task = ZeroShotTask.encode(world_model, world_photos / "shapes")
    result = sweep(Encoder.from_settings(world_model, cfg), redacted_names, "noise", [0.5, 3.0], cfg, task)
    assert [r["strength"] for r in result.rows] == [0.0, 0.5, 3.0]
    assert all(set(r) == {"strength", "redacted_rate", "others_rate", "utility_top1"} for r in result.rows)
    heavy = result.rows[-1]
    print("\nnoise sweep", result.rows, result.warnings)
    # Noise of three times an embedding's norm is blind: everyone loses, so the sweep must say so.
    base = result.rows[0]
    assert heavy["others_rate"] < base["others_rate"] and heavy["utility_top1"] < base["utility_top1"]
    assert any(w.startswith("strength 3:") and "wrong defense" in w for w in result.warnings)
    assert not any(w.startswith("strength 0.5:") for w in result.warnings)  # light noise costs next to nothing
    result.write(tmp_path)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "sweep.csv").read_text())))
    assert [float(r["strength"]) for r in rows] == [0.0, 0.5, 3.0]
    assert json.loads((tmp_path / "sweep.json").read_text())["rows"] == result.rows


def test_verify_command_with_a_perturbation_and_a_sweep(world_model_dir, world_photos, names_file, redacted_names,
                                                         tmp_path):
    people = world_subset(world_photos, tmp_path / "few", 40, include=redacted_names)
    out = tmp_path / "v"
    result = CliRunner().invoke(main, [
        "verify", "--model", "world", "--people", str(people / "people"), "--labels",
        str(people / "labels.json"), "--names", str(names_file), "--defense", "perturb", "--kind", "project",
        "--strengths", "2,10", "--utility", str(world_photos / "shapes"), "--max-images", "3", "--out", str(out),
        "--quiet"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "verification.json").read_text(encoding="utf-8"))
    assert record["defense"]["kind"] == "perturb" and record["defense"]["record"]["losses"] == []
    assert record["defense"]["record"]["checkpoint_sha256_after"] is None
    assert record["sweep"]["kind"] == "project" and [r["strength"] for r in record["sweep"]["rows"]] == [0.0, 2.0, 10.0]
    assert record["summary"]["redacted"]["rate_after"] < record["summary"]["redacted"]["rate_before"]
    assert (out / "before" / "results.json").is_file() and (out / "after" / "results.json").is_file()
    described = load_perturbation(out / "perturbation.json").describe()  # a file read says which file it was
    assert described.pop("file_sha256") == sha256_file(out / "perturbation.json")
    assert described.pop("file") == str(out / "perturbation.json") and described == record["defense"]["settings"]
    assert "redacted:" in result.output and "strength" in result.output


def test_a_perturbation_fitted_on_another_checkpoint_is_refused(projection, world_model, world_photos, tmp_path):
    from idia.attack.run import run_attack
    from idia.attack.settings import AttackSettings
    from idia.errors import InputError
    other = ProjectionPerturbation()
    other.__dict__.update(projection.__dict__)
    other.checkpoint_sha256_ = "0" * 64
    cfg = AttackSettings(model="world", people=world_photos / "people", progress=False, n_candidates=50,
                       cache_dir=tmp_path)
    with pytest.raises(InputError, match="fitted on checkpoint 000000000000"):
        run_attack(cfg, loaded=world_model, perturbation=other)


@pytest.mark.parametrize("kind", ["noise", "project"])
def test_a_perturbation_of_strength_zero_is_refused(tmp_path, kind):
    """The probe: `strength: 0` silently turned the defense off. Variant: both kinds, and the command line."""
    data = {"kind": "idia-perturbation", "schema_version": 1, "type": kind, "names": ["A B"],
            "settings": {"strength": 0, "seed": 0, "side": "text", "templates": ["{0}"], "n_generic": 2},
            "embed_dim": 2, "checkpoint_sha256": "0" * 64, "directions": [[1.0, 0.0]], "explained": [1.0]}
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"p.json: .*above 0.*turns the defense off"):
        load_perturbation(path)
    (tmp_path / "names.txt").write_text("A B\n")
    result = CliRunner().invoke(main, ["defend", "perturb", "--model", "world", "--names", str(tmp_path / "names.txt"),
                                       "--kind", kind, "--strength", "0", "--out", str(tmp_path / "o.json")])
    assert result.exit_code == 2 and "--strength must be above 0 (0 turns the defense off)" in result.output


def test_a_projection_file_whose_names_were_edited_is_refused(redacted_names, world_model, tmp_path):
    """The probe: edited `names` were copied into the record while the directions removed other people. Variant:
    one name swapped for another audited person's."""
    from idia.attack.run import check_perturbation
    encoder = Encoder(world_model, device="cpu", use_cache=False, progress=False)
    small = ProjectionPerturbation(n_generic=20).fit(world_model, redacted_names[:2], encoder=encoder)
    saved = small.save(tmp_path / "p.json")
    check_perturbation(load_perturbation(saved), world_model, encoder)  # as saved: it holds
    data = json.loads(saved.read_text())
    data["names"] = [redacted_names[2]] + data["names"][1:]
    edited = tmp_path / "edited.json"
    edited.write_text(json.dumps(data))
    with pytest.raises(InputError, match="edited.json: its directions are not those of the names it lists"):
        check_perturbation(load_perturbation(edited), world_model, encoder)
