"""Photos read once and hashed and decoded from the same bytes; every mode decoded as the same picture; what a
scan passes over is listed; the same photo under two people is said (and refused between audit and reference)."""

import hashlib
import io
import os
import re

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idia_testkit import photo
from PIL import Image

from idia.attack.encode.engines.local import LocalEngine
from idia.attack.inputs.people import scan_people
from idia.attack.inputs.photos import PhotoChanged, _to_8bit, check_photo, decode_rgb, load_checked
from idia.attack.inputs.scan import scan
from idia.attack.settings import AttackSettings
from idia.errors import InputError

FAST = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def _png(im: Image.Image) -> bytes:
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return buf.getvalue()


def _as_modes(gray: np.ndarray) -> dict[str, bytes]:
    """The same grey picture saved as PNG in every mode a PNG holds it in."""
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    alpha = np.full_like(gray, 255)
    palette = Image.fromarray(gray).convert("P", palette=Image.Palette.ADAPTIVE, colors=256)
    return {"L": _png(Image.fromarray(gray)), "RGB": _png(Image.fromarray(rgb)),
            "RGBA": _png(Image.fromarray(np.dstack([rgb, alpha]))), "LA": _png(Image.fromarray(gray).convert("LA")),
            "I;16": _png(Image.fromarray(gray.astype(np.uint16) * 257)), "P": _png(palette)}


@FAST
@given(st.integers(16, 40), st.integers(16, 40), st.integers(0, 2**32 - 1))
def test_every_png_mode_decodes_to_the_same_pixels(width, height, seed):
    """The slow twin is the 8-bit greyscale PNG itself; 16-bit greyscale (mode I;16, the probe's case) was clipped
    to white by Pillow's own conversion."""
    gray = np.random.default_rng(seed).integers(0, 256, (height, width), dtype=np.uint8)
    expected = np.repeat(gray[:, :, None], 3, axis=2)
    for mode, data in _as_modes(gray).items():
        got = np.asarray(decode_rgb(io.BytesIO(data)))
        assert np.array_equal(got, expected), mode
    # Mode I (32-bit) holding 16-bit values, as older Pillows open 16-bit PNGs: scaled alike.
    as_i = Image.fromarray(gray.astype(np.int32) * 257, mode="I")
    assert np.array_equal(np.asarray(_to_8bit(as_i).convert("RGB")), expected)


def test_a_16_bit_photo_keeps_its_contrast(tmp_path):
    """The probe: a 16-bit greyscale PNG decoded as a white image. Variant: the full 16-bit range, mid-grey."""
    ramp = (np.arange(64 * 64, dtype=np.uint32).reshape(64, 64) * 16).astype(np.uint16)
    path = tmp_path / "ramp16.png"
    Image.fromarray(ramp).save(path)
    got = np.asarray(decode_rgb(open(path, "rb")))[:, :, 0].astype(int)
    assert got.min() == 0 and got.max() >= 250 and abs(got.mean() - 127.5) < 2
    assert check_photo(path)[1] is None


def test_the_hash_a_scan_records_is_of_the_bytes_it_decoded(tmp_path):
    path = photo(tmp_path / "a.png", size=(32, 32))
    digest, why = check_photo(path)
    assert why is None and digest == hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_photo_swapped_after_the_scan_is_refused_by_the_engine(tmp_path):
    """The probe: photos swapped between the scan's read and the encoder's were encoded, and their embeddings
    cached under the originals' hashes. Variant: a swap to bytes of the same size."""
    a = photo(tmp_path / "a.png", seed=1, size=(32, 32))
    recorded = hashlib.sha256(a.read_bytes()).hexdigest()
    photo(tmp_path / "a.png", seed=2, size=(32, 32))  # same size, other pixels
    with pytest.raises(PhotoChanged):
        load_checked(a, recorded)

    class Job:  # what LocalEngine reads of an Encoder
        loaded = type("L", (), {"preprocess": staticmethod(lambda im: torch.zeros(3)),
                                "model": type("M", (), {"encode_image": staticmethod(lambda x: x)})()})()
        torch_device, precision, batch_size, workers, draft_to, progress = torch.device("cpu"), "fp32", 4, 0, None, False

    with pytest.raises(InputError, match="a.png: its bytes changed after the scan hashed it"):
        list(LocalEngine().encode(Job(), [a], [recorded]))
    assert len(list(LocalEngine().encode(Job(), [a], [hashlib.sha256(a.read_bytes()).hexdigest()]))) == 1


def test_a_ray_actor_checks_the_hash_of_what_it_decoded(tmp_path):
    """The Ray engine's actors read the photos themselves: each decodes only bytes with the recorded hash."""
    from idia.attack.encode.engines.ray import PhotoActor
    a = photo(tmp_path / "a.png", seed=1, size=(32, 32))
    good = hashlib.sha256(a.read_bytes()).hexdigest()
    actor = object.__new__(PhotoActor)  # its model, without Ray: the decoding is what is tested
    actor.preprocess, actor.draft_to, actor.dim, actor.precision = (lambda im: torch.ones(2)), None, 2, "fp32"
    actor.device, actor.model = torch.device("cpu"), type("M", (), {"encode_image": staticmethod(lambda x: x)})()
    out = actor({"pos": np.array([0, 1]), "path": np.array([str(a), str(a)]), "sha256": np.array([good, "0" * 64])})
    assert out["error"][0] == "" and out["error"][1].startswith("changed: its bytes changed")
    assert np.isfinite(out["emb"][0]).all() and np.isnan(out["emb"][1]).all()


def test_sub_folders_and_hidden_person_folders_are_listed_not_dropped(tmp_path):
    """The probe: photos in a sub-folder were ignored without a word, and a person folder starting with "."
    disappeared. Variant: a hidden sub-folder inside a person's folder is listed too; .DS_Store stays quiet."""
    root = tmp_path / "people"
    photo(root / "Ada Byron" / "a.png")
    photo(root / "Ada Byron" / "more" / "b.png")
    photo(root / "Ada Byron" / ".thumbs" / "c.png")
    (root / "Ada Byron" / ".DS_Store").write_bytes(b"junk")
    photo(root / ".Bob Stone" / "a.png")
    said = []
    (ada,) = scan_people(root, warn=said.append)
    skipped = {os.path.basename(f): why for f, why in ada.skipped}
    assert set(skipped) == {"more", ".thumbs"} and all("sub-folder" in w for w in skipped.values())
    assert any(".Bob Stone: skipped: a hidden folder" in s for s in said)
    assert not any("DS_Store" in s for s in said)


def _settings(tmp_path, **kw):
    return AttackSettings(model="world", people=tmp_path / "people", progress=False, **kw)


def test_the_same_photo_under_two_people_is_said(tmp_path):
    """The probe: the same bytes in two people's folders gave no warning. Variant: under three people, each
    repeat is named."""
    first = photo(tmp_path / "people" / "Ada Byron" / "a.png", seed=5)
    for who in ("Bob Stone", "Cy Twombly"):
        (tmp_path / "people" / who).mkdir()
        (tmp_path / "people" / who / "x.png").write_bytes(first.read_bytes())
    said = []
    scan(_settings(tmp_path), said.append)
    same = [s for s in said if "the same photo" in s]
    assert len(same) == 2 and all(str(first) in s for s in same)


def test_the_same_photo_among_audited_and_reference_people_is_refused(tmp_path):
    """Variant: the reference copy under another file name and person."""
    first = photo(tmp_path / "people" / "Ada Byron" / "a.png", seed=5)
    photo(tmp_path / "ref" / "Zed Null" / "ok.png", seed=6)
    (tmp_path / "ref" / "Zed Null" / "copy.png").write_bytes(first.read_bytes())
    with pytest.raises(InputError, match=r"copy.png: the same photo .* is among the reference people"):
        scan(_settings(tmp_path, reference=tmp_path / "ref"), lambda m: None)


def test_look_alike_folders_are_refused_showing_the_code_points_that_differ(tmp_path):
    """The probe: the duplicate-name error showed two identical-looking paths. Variant: a zero-width space."""
    for pair, needle in ((("Zo\u00eb Martin", "Zoe\u0308 Martin"), "U+0308 COMBINING DIAERESIS"),
                         (("Anna Smith", "Anna\u200b Smith"), "U+200B ZERO WIDTH SPACE")):
        root = tmp_path / pair[0].encode("ascii", "replace").decode().replace("?", "_")
        for name in pair:
            photo(root / name / "a.png")
        with pytest.raises(InputError, match=re.escape(needle)):
            scan_people(root, warn=lambda m: None)


class _MeanColour(torch.nn.Module):
    """A stand-in image tower: a photo's embedding is its mean colour (enough to tell photos apart)."""

    logit_scale = torch.nn.Parameter(torch.zeros(()))

    def encode_image(self, x):
        return x


def _stub_encoder(cache):
    from idia.attack.encode.encoder import Encoder
    from idia.attack.model.adapter import LoadedModel
    loaded = LoadedModel(model=_MeanColour(), tokenizer=None, source="stub", checkpoint=None,
                         checkpoint_sha256="a" * 64, model_cfg={"embed_dim": 3, "vision_cfg": {}, "text_cfg": {}},
                         preprocess=lambda im: torch.tensor(np.asarray(im), dtype=torch.float32).mean((0, 1)) + 1,
                         preprocess_cfg={})
    return Encoder(loaded, device="cpu", workers=0, cache_dir=cache, progress=False)


def test_a_swapped_photo_never_enters_the_image_cache(tmp_path):
    """The probe's second half: with the originals back and the same cache, the swapped photos' embeddings came
    back under the originals' hashes. Now the swap is refused and nothing is cached; with the original back, the
    cache holds the original's embedding."""
    a = photo(tmp_path / "a.png", seed=1, size=(32, 32))
    original = a.read_bytes()
    recorded = hashlib.sha256(original).hexdigest()
    photo(tmp_path / "a.png", seed=2, size=(32, 32))
    enc = _stub_encoder(tmp_path / "cache")
    with pytest.raises(InputError, match="bytes changed after the scan"):
        enc.encode_photos([a], [recorded])
    assert not list((tmp_path / "cache").rglob("shard-*.npz"))
    a.write_bytes(original)
    emb = _stub_encoder(tmp_path / "cache").encode_photos([a], [recorded])
    again = _stub_encoder(tmp_path / "cache")
    assert np.array_equal(again.encode_photos([a], [recorded]), emb) and again.log.images_from_cache == 1


def test_an_unchanged_photo_is_checked_once_a_process_and_a_changed_one_again(tmp_path, monkeypatch):
    """A verification scans the same photos a dozen times, through folders of links: the second check of an
    unchanged file, by any path, reads nothing; a file rewritten in place (new bytes, or damaged) is read and
    judged again."""
    from idia.attack.inputs import photos as photos_module
    reads = []
    real = photos_module._check_photo
    monkeypatch.setattr(photos_module, "_check_photo", lambda p: reads.append(p) or real(p))
    f = photo(tmp_path / "a.png", seed=1)
    first = check_photo(f)
    assert check_photo(f) == first and len(reads) == 1 and first[1] is None
    f.write_bytes((tmp_path / "b.png").read_bytes() if photo(tmp_path / "b.png", seed=2) else b"")
    second = check_photo(f)
    assert len(reads) == 2 and second[1] is None and second[0] != first[0]
    link = tmp_path / "link.png"
    link.symlink_to(f)
    assert check_photo(link) == second and len(reads) == 2  # the same file through a link: not read again
    f.write_bytes(b"\x89PNG\r\n\x1a\n damaged")
    assert check_photo(f)[0] is None and len(reads) == 3
    assert check_photo(f)[0] is None and len(reads) == 4  # a failure is judged again (its reason names the path)
