"""Inputs read before anything is encoded: people folders, photos, name files, candidate lists; each bad one is skipped and listed, or refused in one line."""

import io
import os
import unicodedata
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idia_testkit import assert_one_line_error, photo, run_idia
from PIL import Image

from idia.attack.inputs.distractors import CandidateList, build_candidates
from idia.attack.inputs.names import read_name_file
from idia.attack.inputs.people import scan_people
from idia.attack.inputs.photos import MIN_SIDE, check_image, load_rgb
from idia.errors import InputError
from idia.names import name_key, normalize_name

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


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


def test_names_are_nfc_before_any_comparison():
    nfc, nfd = "Zo\u00eb Martin", "Zoe\u0308 Martin"
    assert nfc != nfd and normalize_name(nfd) == nfc and name_key(nfd) == name_key("ZOË  martin")
    cand = build_candidates([nfd], n_total=20, seed=0)
    assert cand.names.count(nfc) == 1 and nfd not in cand.names


def test_two_folders_that_normalise_to_one_name_are_refused_naming_both(tmp_path):
    photo(tmp_path / "Zo\u00eb Martin" / "a.png")
    photo(tmp_path / "Zoe\u0308 Martin" / "a.png")
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
        photo(tmp_path / "people" / name / "a.png", seed=i, size=(64, 64))
    (tmp_path / "c.txt").write_text("agnes albrecht\nbruno costa\nCarla Diaz\n")
    run = run_attack(AttackSettings(model=str(world_model_dir), people=tmp_path / "people", candidates=tmp_path / "c.txt",
                                  progress=False, cache_dir=tmp_path / "cache"), loaded=world_model)
    assert [p.name for p in run.result.persons] == ["Agnes Albrecht", "Bruno Costa"]
    assert run.candidates == ["agnes albrecht", "bruno costa", "Carla Diaz"]
    assert list(run.evidence.true_index) == [0, 1]


def test_damaged_foreign_tiny_and_special_photos_are_listed_and_skipped(tmp_path):
    import weasyprint  # noqa: F401 -- sets Pillow's LOAD_TRUNCATED_IMAGES process-wide; the check must not care
    person = tmp_path / "people" / "Ada Byron"
    good = photo(person / "good.jpg", size=(48, 40), fmt="JPEG")
    (person / "truncated.jpg").write_bytes(good.read_bytes()[: len(good.read_bytes()) // 2])
    png = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(png, format="PNG")
    raw = bytearray(png.getvalue())
    idat = raw.index(b"IDAT") + 8
    raw[idat:idat + 12] = b"\x00" * 12  # corrupt the compressed stream (CRC left wrong too)
    (person / "corrupt.png").write_bytes(bytes(raw))
    (person / "eps.jpg").write_bytes(b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\nshowpage\n")
    photo(person / "tiny.png", size=(1, 1))
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
    photo(tmp_path / "people" / "Bob Stone" / "tiny.png", size=(4, 4))
    with pytest.raises(InputError, match="none of the 2 people has a usable photo"):
        scan_people(tmp_path / "people", warn=lambda m: None)
    proc = run_idia("attack", "--model", "world", "--people", tmp_path / "people", "--out", tmp_path / "o", "-q")
    assert_one_line_error(proc, "nobody can be audited")


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
