"""Issue 8: every input a real audit meets gets one clear line, and nothing is lost or misattributed."""

import io
import json
import os
import sys
import unicodedata
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from idia.attack.inputs.distractors import CandidateList, build_candidates
from idia.attack.inputs.people import scan_people
from idia.attack.inputs.photos import MIN_SIDE, check_image, load_rgb
from idia.errors import InputError
from idia.io import output_lock, read_regular_bytes
from idia.names import name_key, normalize_name


def _photo(path: Path, seed: int = 0, size=(40, 32), fmt=None, **save) -> Path:
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path, format=fmt, **save)
    return path


def _idia(*args, cwd=None):
    """`idia ARGS` in this process (torch is imported once per session, not once per command)."""
    from click.testing import CliRunner

    from idia.compliance.cli import main
    old = os.getcwd()
    os.chdir(cwd or old)
    try:
        r = CliRunner().invoke(main, [str(a) for a in args], catch_exceptions=False)
    finally:
        os.chdir(old)
    return SimpleNamespace(returncode=r.exit_code, stderr=r.stderr, stdout=r.stdout)


def assert_one_line_error(proc, *needles):
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("idia: error: "), proc.stderr
    for n in needles:
        assert n in lines[0], lines[0]
    return lines[0]


# --- names ---------------------------------------------------------------------------------------------------

def test_names_are_nfc_before_any_comparison():
    nfc, nfd = "Zo\u00eb Martin", "Zoe\u0308 Martin"
    assert nfc != nfd and normalize_name(nfd) == nfc and name_key(nfd) == name_key("ZOË  martin")
    cand = build_candidates([nfd], n_total=20, seed=0)
    assert cand.names.count(nfc) == 1 and nfd not in cand.names


def test_two_folders_that_normalise_to_one_name_are_refused_naming_both(tmp_path):
    _photo(tmp_path / "Zo\u00eb Martin" / "a.png")
    _photo(tmp_path / "Zoe\u0308 Martin" / "a.png")
    with pytest.raises(InputError) as e:
        scan_people(tmp_path, warn=lambda m: None)
    msg = str(e.value)
    assert "\n" not in msg and "Zo\u00eb Martin" in msg and "Zoe\u0308 Martin" in msg


def test_candidate_lookup_uses_the_duplicate_checks_normalisation(tmp_path):
    f = tmp_path / "cands.txt"
    f.write_text("agnes albrecht\nBruno Costa\n")
    cand = build_candidates(["Agnes Albrecht"], user_file=f)
    assert cand.added_true_names == [] and cand.position("Agnes Albrecht") == 0
    assert cand.position(unicodedata.normalize("NFD", "BRUNO  costa")) == 1
    with pytest.raises(InputError, match="not among"):
        CandidateList(names=["A B"], source="x").position("C D")


@pytest.mark.slow
def test_a_candidate_file_in_another_case_runs(world_model, world_model_dir, tmp_path):
    from idia.attack.run import run_attack
    from idia.attack.settings import AttackSettings
    for i, name in enumerate(["Agnes Albrecht", "Bruno Costa"]):
        _photo(tmp_path / "people" / name / "a.png", seed=i, size=(64, 64))
    (tmp_path / "c.txt").write_text("agnes albrecht\nbruno costa\nCarla Diaz\n")
    run = run_attack(AttackSettings(model=str(world_model_dir), people=tmp_path / "people", candidates=tmp_path / "c.txt",
                                  progress=False, cache_dir=tmp_path / "cache"), loaded=world_model)
    assert [p.name for p in run.result.persons] == ["Agnes Albrecht", "Bruno Costa"]
    assert run.candidates == ["agnes albrecht", "bruno costa", "Carla Diaz"]
    assert list(run.evidence.true_index) == [0, 1]


# --- photos --------------------------------------------------------------------------------------------------

def test_damaged_foreign_tiny_and_special_photos_are_listed_and_skipped(tmp_path):
    import weasyprint  # noqa: F401 -- sets Pillow's LOAD_TRUNCATED_IMAGES process-wide; the check must not care
    person = tmp_path / "people" / "Ada Byron"
    good = _photo(person / "good.jpg", size=(48, 40), fmt="JPEG")
    (person / "truncated.jpg").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    png = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(png, format="PNG")
    raw = bytearray(png.getvalue())
    idat = raw.index(b"IDAT") + 8
    raw[idat:idat + 12] = b"\x00" * 12  # corrupt the compressed stream (CRC left wrong too)
    (person / "corrupt.png").write_bytes(bytes(raw))
    (person / "eps.jpg").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    _photo(person / "tiny.png", size=(1, 1))
    os.mkfifo(person / "pipe.png")
    warnings = []
    people = scan_people(tmp_path / "people", warn=warnings.append)
    (ada,) = people
    assert [ph.path.name for ph in ada.photos] == ["good.jpg"]
    why = {Path(f).name: w for f, w in ada.skipped}
    assert set(why) == {"truncated.jpg", "corrupt.png", "eps.jpg", "tiny.png", "pipe.png"}
    assert why["truncated.jpg"].startswith("damaged image")
    assert why["corrupt.png"].startswith("damaged image")
    assert why["eps.jpg"].startswith("not a readable image (only JPEG, PNG, WEBP")
    assert why["tiny.png"] == f"too small: 1x1 pixels is below the {MIN_SIDE}x{MIN_SIDE} minimum for a photo"
    assert why["pipe.png"].startswith("not a regular file (a FIFO)")
    assert len(warnings) == 5 and all("\n" not in w for w in warnings)


def test_pillow_never_reaches_ghostscript_for_eps_bytes(tmp_path, monkeypatch):
    from PIL import EpsImagePlugin
    calls = []
    monkeypatch.setattr(EpsImagePlugin, "Ghostscript", lambda *a, **k: calls.append(a))
    eps = tmp_path / "x.jpg"
    eps.write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    assert check_image(eps).startswith("not a readable image")
    assert calls == []


def test_exif_orientation_is_applied_alike_for_the_model_and_the_thumbnail(tmp_path):
    import hashlib

    from idia.compliance.report.photos import thumbnail
    img = Image.new("RGB", (64, 32), "white")
    img.paste((255, 0, 0), (0, 0, 8, 8))  # a red corner, top left as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise to view
    path = tmp_path / "rotated.jpg"
    img.save(path, format="JPEG", exif=exif, quality=95)
    upright = load_rgb(path)
    assert upright.size == (32, 64)  # the model sees the photo as a viewer does
    r, g, b = upright.getpixel((28, 3))  # red corner now top right
    assert r > 200 and g < 60 and b < 60
    thumb = thumbnail(str(path), hashlib.sha256(path.read_bytes()).hexdigest(), size=64)
    import base64
    shown = Image.open(io.BytesIO(base64.b64decode(thumb.uri.split(",", 1)[1])))
    assert shown.size == upright.size


def test_nobody_auditable_is_an_error_with_one_line(tmp_path):
    (tmp_path / "people" / "Ada Byron").mkdir(parents=True)
    (tmp_path / "people" / "Ada Byron" / "x.jpg").write_bytes(b"not a jpeg")
    _photo(tmp_path / "people" / "Bob Stone" / "tiny.png", size=(4, 4))
    with pytest.raises(InputError, match="none of the 2 people has a usable photo"):
        scan_people(tmp_path / "people", warn=lambda m: None)
    proc = _idia("attack", "--model", "world", "--people", tmp_path / "people", "--out", tmp_path / "o", "-q")
    assert_one_line_error(proc, "nobody can be audited")


# --- one line instead of a traceback ------------------------------------------------------------------------

def test_a_text_file_as_checkpoint_is_one_line(tmp_path, world_model_dir):
    ck = tmp_path / "weights.pt"
    ck.write_text("these are not weights\n")
    _photo(tmp_path / "people" / "Ada Byron" / "a.png")
    proc = _idia("attack", "--model", world_model_dir / "open_clip_config.json", "--checkpoint", ck,
                 "--people", tmp_path / "people", "--out", tmp_path / "o", "-q")
    assert_one_line_error(proc, str(ck), "not a checkpoint")


def test_a_bad_preprocess_cfg_is_one_line(tmp_path, world_model_dir):
    from idia.attack.model.load import load_clip
    folder = tmp_path / "model"
    folder.mkdir()
    cfg = json.loads((world_model_dir / "open_clip_config.json").read_text())
    (folder / "open_clip_model.safetensors").symlink_to(world_model_dir / "open_clip_model.safetensors")
    for key, value, needle in [("interpolation", "lanczos9", "preprocess_cfg.interpolation must be one of"),
                               ("resize_mode", 3, "preprocess_cfg.resize_mode"),
                               ("mean", "grey", "preprocess_cfg.mean must be a list")]:
        (folder / "open_clip_config.json").write_text(json.dumps(
            {**cfg, "preprocess_cfg": {**cfg.get("preprocess_cfg", {}), key: value}}))
        with pytest.raises(InputError, match=needle):
            load_clip(str(folder))


@pytest.mark.parametrize("text,needle", [
    ("model: !!python/name:os.system world\npeople: p\noutput: o\n", ":1: the tag 'tag:yaml.org,2002:python/name:os.system'"),
    ("model: world\npeople: !custom p\noutput: o\n", ":2: the tag '!custom' is not allowed"),
    ("model: world\n? [a, b]\n: 1\npeople: p\noutput: o\n", ":2: a key must be plain text"),
    ("model: world\npeople: p\noutput: o\nreports:\n  - {? [x]: 1}\n", ":5: a key in reports[0] must be plain text"),
])
def test_yaml_tags_and_complex_keys_are_one_line(tmp_path, text, needle):
    cfg = tmp_path / "audit.yaml"
    cfg.write_text(text)
    assert_one_line_error(_idia("audit", cfg, "-q"), needle)


@pytest.mark.slow
def test_a_record_with_fields_of_the_wrong_type_is_one_line(paper_run, tmp_path):
    from idia.attack.run import write_attack
    from idia.compliance.report import write_report
    path = write_attack(paper_run, tmp_path / "r")
    good = json.loads(path.read_text())
    name = good["persons"][0]["name"]
    for mutate, needle in [(lambda d: d["persons"][0].update(votes="every prompt"), "persons[0].votes must be a list"),
                           (lambda d: d["persons"][0]["votes"][2].update(tie="no"), "persons[0].votes[2].tie"),
                           (lambda d: d["persons"][0].update(score="21"), "persons[0].score must be whole number"),
                           (lambda d: d["rule"].update(n_prompts=None), "rule.n_prompts")]:
        data = json.loads(json.dumps(good))
        mutate(data)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(data))
        for kind, person in (("takedown", name), ("audit", None)):
            with pytest.raises(InputError, match=needle.replace("[", r"\[").replace("]", r"\]")):
                write_report(bad, kind, tmp_path / "x.html", person=person)


def test_special_and_huge_records_are_one_line(tmp_path):
    assert_one_line_error(_idia("report", "/dev/zero", "--kind", "audit", "--out", tmp_path / "x.pdf"),
                    "/dev/zero: not a regular file")
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    assert_one_line_error(_idia("report", fifo, "--kind", "audit", "--out", tmp_path / "x.pdf"), "not a regular file")
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(5000)
    with pytest.raises(InputError, match="5,000 bytes is over the 4,096-byte limit"):
        read_regular_bytes(big, limit=4096, what="JSON record")


# --- concurrency, perturbations, manifests -------------------------------------------------------------------

def test_an_output_folder_in_use_is_refused_with_the_holders_pid(tmp_path):
    with output_lock(tmp_path / "out"):
        with pytest.raises(InputError, match=rf"is in use by another idia run \(pid {os.getpid()}\)"):
            with output_lock(tmp_path / "out"):
                pass
        proc = _idia("attack", "--model", "world", "--people", tmp_path, "--out", tmp_path / "out", "-q")
        assert_one_line_error(proc, f"{tmp_path / 'out'}: is in use by another idia run (pid {os.getpid()})")
    with output_lock(tmp_path / "out"):  # released: usable again
        pass


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


def test_every_manifest_records_versions_threads_and_device(monkeypatch):
    import torch

    from idia.manifest import build_manifest
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    rt = build_manifest(0, {})["runtime"]
    assert rt["torch"] == torch.__version__ and rt["numpy"] == np.__version__ and rt["open_clip"]
    assert rt["torch_threads"] == torch.get_num_threads()
    assert rt["torch_interop_threads"] == torch.get_num_interop_threads()
    assert rt["thread_env"]["OMP_NUM_THREADS"] == "3"
    assert rt["python"] == sys.version.split()[0] and rt["platform"] and rt["device"]


# --- the audit end to end: reports per person, resume from anywhere, damaged outputs --------------------------

ANNES = ["Anne-Marie Roux", "Anne Marie Roux", "Anne.Marie Roux"]


@pytest.fixture(scope="module")
def anne_audit(tmp_path_factory):
    """Three people whose names differ only in punctuation, each with their own photos, and a config for them."""
    root = tmp_path_factory.mktemp("annes")
    for i, name in enumerate(ANNES):
        for k in range(2):
            _photo(root / "photos" / name / f"{k}.png", seed=10 * i + k, size=(64, 64))
    reports = "".join(f"  - kind: takedown\n    person: {json.dumps(n)}\n    include_photos: true\n" for n in ANNES)
    (root / "audit.yaml").write_text(f"model: world\npeople: photos\nn_candidates: 30\nreports:\n{reports}output: out\n")
    return root


def _pdf_text(path: Path) -> str:
    from pypdf import PdfReader
    return " ".join(page.extract_text() for page in PdfReader(str(path)).pages)


@pytest.mark.slow
def test_takedown_reports_of_colliding_names_are_three_files_each_with_its_own_evidence(anne_audit):
    proc = _idia("audit", "audit.yaml", "-q", cwd=anne_audit)
    assert proc.returncode == 0, proc.stderr
    out = anne_audit / "out"
    pdfs = sorted((out / "reports").glob("takedown-*.pdf"))
    assert len(pdfs) == 3 and len({p.name for p in pdfs}) == 3
    record = json.loads((out / "attack" / "results.json").read_text())
    from idia.compliance.pipeline import _safe_stem
    for name in ANNES:
        pdf = out / "reports" / f"takedown-{_safe_stem(name)}.pdf"
        text = " ".join(_pdf_text(pdf).split())
        person = next(p for p in record["persons"] if p["name"] == name)
        assert name in text and all(other not in text for other in ANNES if other != name)
        assert all(im["sha256"] in text.replace(" ", "") or im["sha256"][:16] in text.replace(" ", "")
                   for im in person["images"])
    assert _safe_stem(ANNES[0]) == _safe_stem(unicodedata.normalize("NFD", ANNES[0]))  # stable


@pytest.mark.slow
def test_the_same_audit_resumes_from_another_directory_and_finds_its_photos(anne_audit, tmp_path):
    from idia.compliance.config import load_config
    from idia.compliance.pipeline import run_audit
    first = _idia("audit", "audit.yaml", "-q", cwd=anne_audit)
    assert first.returncode == 0, first.stderr
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    cfg_path = os.path.relpath(anne_audit / "audit.yaml", elsewhere)
    old = os.getcwd()
    os.chdir(elsewhere)
    try:
        second = run_audit(load_config(cfg_path), progress=False)
    finally:
        os.chdir(old)
    assert set(second.resumed) == {"attack"} | {f"report-{p.stem}" for p in second.reports}
    state = json.loads((anne_audit / "out" / "state.json").read_text())
    for step in state["steps"].values():
        assert all(not Path(rel).is_absolute() for rel in step["outputs"])
    html = next((anne_audit / "out" / "reports").glob("takedown-*.html")).read_text()
    assert html.count("data:image/png;base64,") >= 2 and "not found where the record says" not in html


@pytest.mark.slow
def test_a_damaged_step_output_is_made_again(anne_audit):
    from idia.compliance.config import load_config
    from idia.compliance.pipeline import run_audit
    cfg = load_config(anne_audit / "audit.yaml")
    run_audit(cfg, progress=False)
    results = anne_audit / "out" / "attack" / "results.json"
    whole = results.read_bytes()
    results.write_bytes(whole[: len(whole) // 2])  # truncated, as by a full disk or a careless copy
    again = run_audit(cfg, progress=False)
    assert "attack" not in again.resumed
    assert json.loads(results.read_text())["persons"] == json.loads(whole)["persons"]
    assert "attack" in run_audit(cfg, progress=False).resumed


def test_report_person_is_found_in_any_unicode_form_and_case():
    from idia.compliance.report.people import find_person as _find_person
    data = {"persons": [{"name": "Zo\u00eb Martin"}, {"name": "Bob Stone"}]}
    assert _find_person(data, "ZOE\u0308  martin")["name"] == "Zo\u00eb Martin"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP"])
@pytest.mark.parametrize("flag", [True, False])
def test_a_truncated_photo_is_refused_whatever_pillows_flag_and_the_flag_is_left_alone(fmt, flag, monkeypatch):
    from PIL import ImageFile

    from idia.attack.inputs.photos import decode_rgb
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", flag)  # weasyprint sets it True when imported
    buf = io.BytesIO()
    Image.fromarray((np.random.default_rng(0).random((64, 64, 3)) * 255).astype("uint8")).save(buf, fmt)
    data = buf.getvalue()
    whole = np.asarray(decode_rgb(io.BytesIO(data)))
    assert (whole == np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))).all()
    for cut in (0.5, 0.9, 0.99):
        with pytest.raises(OSError):
            decode_rgb(io.BytesIO(data[: int(len(data) * cut)]))
    assert ImageFile.LOAD_TRUNCATED_IMAGES is flag
