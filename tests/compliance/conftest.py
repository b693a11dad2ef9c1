"""Records the report tests render: attacks on the world as results.json (paper, calibrated, hostile names) and a
verification built from one."""

import copy
import json

import pytest
from idia_testkit import write_verification_folder

HOSTILE = {
    "html": '<img src="file:///etc/passwd">',
    "script": "<script>alert(1)</script> Smith",
    "url": "file:///etc/passwd",
    "long": ("Wolfeschlegelsteinhausenbergerdorff" * 15)[:500],
    "rlo": "\u202eevil Doe",
    "arabic": "محمد الأحمد",
    "hebrew": "דוד כהן",
}


@pytest.fixture(scope="module")
def paper_json(tmp_path_factory, paper_run):
    path = tmp_path_factory.mktemp("report-paper") / "results.json"
    path.write_text(paper_run.result.to_json(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def calibrated_json(tmp_path_factory, calibrated_run):
    path = tmp_path_factory.mktemp("report-cal") / "results.json"
    path.write_text(calibrated_run.result.to_json(), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def verification_json(tmp_path_factory, calibrated_run, paper_run):
    """A verification folder that holds together: before/ and after/results.json (two real attacks on the world),
    verification.json linking them by SHA-256, its sections drawn from them."""
    return write_verification_folder(tmp_path_factory.mktemp("report-verify"), calibrated_run.result.to_dict(),
                                     paper_run.result.to_dict())


@pytest.fixture(scope="module")
def hostile_json(tmp_path_factory, calibrated_run):
    """A small real record whose people carry hostile names (in persons, votes and the photo manifest)."""
    data = copy.deepcopy(calibrated_run.result.to_dict())
    members = [p for p in data["persons"] if p["member"]]
    others = [p for p in data["persons"] if not p["member"]]
    data["persons"] = members[:len(HOSTILE)] + others[:5]
    data["metrics"] = None  # a subset of the people: drop what no longer follows from them (the record must hold)
    renamed, moved = {}, {}
    for p in data["persons"]:
        p["label"] = None
    for p, new in zip(data["persons"], HOSTILE.values()):
        renamed[p["name"]] = new
        p["name"] = new
        for v in p["votes"]:
            if v["is_true_name"]:
                v["vote"] = new
        for im in p["images"]:
            old = im["file"]
            im["file"] = im["file"].replace("/", "/" + new + "/", 1) if new != HOSTILE["long"] else im["file"]
            moved[old] = im["file"]
    kept = {p["name"] for p in data["persons"] + data["reference"]} | set(renamed)
    images = [dict(im) for im in data["manifest"]["inputs"]["images"] if im["person"] in kept]
    for im in images:
        im["person"] = renamed.get(im["person"], im["person"])
        im["file"] = moved.get(im["file"], im["file"])
    data["manifest"]["inputs"]["images"] = images
    data["manifest"]["command"] = 'idia attack --people "<script>alert(2)</script>" --out x'
    data["warnings"] = ['<a rel="attachment" href="file:///etc/passwd">attached</a>']
    path = tmp_path_factory.mktemp("report-hostile") / "results.json"
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False), encoding="utf-8")
    return path
