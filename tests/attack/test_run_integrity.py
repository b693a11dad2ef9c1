"""One small attack on noise photos, and what must never come out of it unsaid: settings at which nobody can be
identified, a model that cannot tell names apart or gives NaN, a record beside another run's table, names a
spreadsheet would run as formulas, a perturbation file's hash."""

import copy
import csv
import dataclasses
import io
import json
import resource

import pytest
import torch
from idia_testkit import assert_one_line_error, noise_people, run_idia

from idia.attack.run import run_attack, write_attack
from idia.attack.settings import AttackSettings
from idia.defense.perturb import NoisePerturbation, load_perturbation
from idia.errors import InputError

NAMES = ["=SUM(1+2) Doe", "@Ada Byron", "Bob Stone", "Cy Twombly"]


@pytest.fixture(scope="module")
def noise_run(tmp_path_factory, world_model, world_model_dir):
    """50 candidates (46 made-up distractors, and no further ones: --max-distractors 46) at alpha 0.01, through a
    noise perturbation read from a file."""
    root = tmp_path_factory.mktemp("noise-run")
    people = noise_people(root / "people", n_photos=2, names=NAMES)
    pert = NoisePerturbation(strength=0.1).fit(world_model, ["Bob Stone"]).save(root / "noise.json")
    settings = AttackSettings(model=str(world_model_dir), people=people, n_candidates=50, progress=False,
                              workers=0, command="pytest", alpha=0.01, max_distractors=46)
    said = []
    run = run_attack(settings, loaded=world_model, perturbation=load_perturbation(pert), warn=said.append)
    out = root / "out"
    write_attack(run, out)
    return run, out, settings, said, pert


def test_a_level_that_cannot_be_reached_is_said_in_the_record_the_warnings_and_the_report(noise_run):
    """The probe: 50 candidates at alpha 0.01 reported "0 identified" without a word."""
    from idia.compliance.report import render_html
    run, out, _, said, _ = noise_run
    assert "1/47" in run.result.rule["cannot_flag"] and not any(p.member for p in run.result.persons)
    assert any(s.startswith("NOBODY CAN BE IDENTIFIED") for s in said)
    data = json.loads((out / "results.json").read_text())
    for kind, person in (("audit", None), ("takedown", "Bob Stone")):
        html = render_html(kind, data, person=person)
        assert "Nobody could have been identified at the settings of this run" in html


def test_the_takedown_of_a_permutation_verdict_does_not_speak_of_phrasings_deciding(noise_run):
    """The probe: "identified from 1 phrasing" when the permutation test decided."""
    from idia.compliance.report import render_html
    data = json.loads((noise_run[1] / "results.json").read_text())
    html = " ".join(render_html("takedown", data, person="Bob Stone").split())
    assert "identified from" not in html and "comes from the statistical test of section 3" in html


def test_an_edited_verdict_is_refused_by_idia_report_in_one_line(noise_run, tmp_path):
    """The probe: `member: true` at a p-value far above alpha was rendered as "Identified"."""
    data = json.loads((noise_run[1] / "results.json").read_text())
    assert data["persons"][2]["name"] == "Bob Stone" and data["persons"][2]["p_value"] > 0.01
    data["persons"][2]["member"] = True
    (tmp_path / "results.json").write_text(json.dumps(data))
    proc = run_idia("report", tmp_path / "results.json", "--kind", "takedown", "--person", "Bob Stone",
                    "--out", tmp_path / "t.pdf")
    assert_one_line_error(proc, "results.json: the record does not hold together: persons[2] ('Bob Stone'): member "
                                "is true but the permutation rule gives false")
    assert not (tmp_path / "t.pdf").exists()


def test_the_perturbation_file_is_hashed_in_the_manifest(noise_run):
    import hashlib
    _, out, _, _, pert = noise_run
    recorded = json.loads((out / "results.json").read_text())["manifest"]["inputs"]["perturbation"]
    assert recorded["file"] == str(pert) and recorded["sha256"] == hashlib.sha256(pert.read_bytes()).hexdigest()


def test_formula_like_names_are_inert_in_scores_csv_and_persons_csv(noise_run):
    """The probe: names starting with = + - @ written raw. Variant: the persons.csv attachment too."""
    from idia.compliance.report.kinds import Request
    from idia.compliance.report.kinds.audit import carry
    rows = list(csv.DictReader(io.StringIO((noise_run[1] / "scores.csv").read_text())))
    people = {r["person"] for r in rows}
    assert "'" + NAMES[0] in people and "'@Ada Byron" in people and "Bob Stone" in people
    assert all(not r["person"].startswith(("=", "@")) and not r["image"].startswith(("=", "@")) for r in rows)
    data = json.loads((noise_run[1] / "results.json").read_text())
    files, _ = carry(data, Request(b"{}", "results.json"))
    persons_csv = next(f for f in files if f.name == "persons.csv").data.decode()
    assert "\n'=SUM(1+2) Doe" in persons_csv and "\n'@Ada Byron" in persons_csv


def test_a_record_that_cannot_be_written_leaves_the_folder_as_it_was(noise_run, tmp_path):
    """The probe: a NaN model failed writing results.json after scores.csv was replaced, leaving the old record
    beside the new table. Variant: the disk fills (a file-size limit) while the table is written."""
    run, out, *_ = noise_run
    folder = tmp_path / "out"
    write_attack(run, folder)
    before = {p.name: p.read_bytes() for p in folder.iterdir()}
    broken = copy.deepcopy(run)
    broken.result.persons[0].mean_prob = float("nan")
    with pytest.raises(InputError, match="not finite"):
        write_attack(broken, folder)
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (2000, hard))
    try:
        with pytest.raises(OSError):
            write_attack(run, folder)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
    assert {p.name: p.read_bytes() for p in folder.iterdir()} == before  # no half table, no temporary file


def _altered(world_model, how):
    model = copy.deepcopy(world_model.model)
    with torch.no_grad():
        how(model)
    return dataclasses.replace(world_model, model=model, checkpoint_sha256="f" * 64)


def test_a_model_that_cannot_tell_names_apart_is_refused_before_any_verdict(noise_run, world_model):
    """The probe: an all-zero model's votes all went to the first candidate. Variant: only the text tower zero."""
    settings = noise_run[2].replace(rule="paper")
    for how in (lambda m: [p.zero_() for p in m.parameters()],
                lambda m: [p.zero_() for n, p in m.named_parameters() if not n.startswith("visual.")]):
        with pytest.raises(InputError, match="gives every candidate name the same embedding in every prompt"):
            run_attack(settings, loaded=_altered(world_model, how))


def test_nan_or_infinite_weights_are_one_line_and_nothing_is_cached(noise_run, world_model, tmp_path):
    """The probe: NaN in the weights failed only when JSON was written, after NaN embeddings were cached.
    Variant: an infinite logit scale."""
    settings = noise_run[2].replace(rule="paper", cache_dir=tmp_path / "cache")
    nan = _altered(world_model, lambda m: m.visual.proj.fill_(float("nan")))
    with pytest.raises(InputError, match="NaN or infinite embeddings for photos"):
        run_attack(settings, loaded=nan)
    assert not list((tmp_path / "cache").rglob("shard-*.npz"))
    inf = _altered(world_model, lambda m: m.logit_scale.fill_(float("inf")))
    with pytest.raises(InputError, match="logit scale is inf"):
        run_attack(settings, loaded=inf)


def test_a_cache_folder_that_cannot_be_written_is_one_line(noise_run, tmp_path):
    """The probe: a read-only --cache-dir ended in a traceback. Variant (root ignores permissions): a file where
    the cache folder should be."""
    (tmp_path / "cache").write_text("a file")
    proc = run_idia("attack", "--model", "world", "--people", noise_run[2].people, "--n-candidates", "50",
                    "--workers", "0", "--cache-dir", tmp_path / "cache", "--out", tmp_path / "o", "-q")
    assert_one_line_error(proc, str(tmp_path / "cache"), "Not a directory")
    assert not (tmp_path / "o" / "results.json").exists()


def test_names_the_text_context_makes_alike_are_refused_and_cut_names_said(world_model, world_model_dir, tmp_path):
    """The probe: two 18-token names differing only at the end scored alike in all 21 prompts. Variant: a name
    cut only in the longer prompts runs, with a warning naming it."""
    stem = "Wolfeschlegelsteinhausenbergerdorff Alderwood Brightwater Quill"
    settings = AttackSettings(model=str(world_model_dir), people=tmp_path / "alike", rule="paper", n_candidates=20,
                              progress=False, workers=0)
    noise_people(tmp_path / "alike", n_photos=1, names=[stem + " Anne", stem + " Anna"])
    with pytest.raises(InputError, match="read the same in every prompt once cut to the model's text context of 16"):
        run_attack(settings, loaded=world_model)
    noise_people(tmp_path / "cut", n_photos=1, names=["Krzysztof Svoboda", "Ann Lee"])
    said = []
    run_attack(settings.replace(people=tmp_path / "cut"), loaded=world_model, warn=said.append)
    assert any("1 person's name is cut short" in s and "'Krzysztof Svoboda'" in s for s in said)
