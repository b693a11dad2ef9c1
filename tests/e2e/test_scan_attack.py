"""Whom to audit, end to end on the world: its training captions written out as webdataset shards, `idia scan`
counting the members they name and gathering their photos, then the attack on those folders with the counts,
and the audit report's figure of identification against occurrences."""

import csv
import json

from idia_testkit import run_idia

from idia.attack.run import run_attack
from idia.attack.settings import AttackSettings
from idia.compliance.report.document import render_html
from idia.world import load_world
from idia.world.world import write_training_captions


def test_scan_finds_the_worlds_members_and_their_counts_and_the_attack_records_them(
        world_model, world_model_dir, tmp_path):
    world = load_world(world_model_dir)
    truth = write_training_captions(world, tmp_path / "shards", shard_size=64, members=4, shapes=20)
    assert sorted(set(truth.values())) == [5, 10, 25, 50]

    proc = run_idia("scan", tmp_path / "shards", "--out", tmp_path / "scan", "--photos-out", tmp_path / "people",
                    "--min-photos", "5", "--workers", "1", "--quiet")
    assert proc.returncode == 0, proc.stderr
    rows = list(csv.DictReader((tmp_path / "scan" / "names.csv").open(encoding="utf-8")))
    assert {r["name"]: int(r["count"]) for r in rows} == truth  # the shapes' captions name nobody
    assert {p.name: len(list(p.iterdir())) for p in (tmp_path / "people").iterdir()} == truth
    scanned = json.loads((tmp_path / "scan" / "scan.json").read_text())
    assert scanned["captions"] == sum(truth.values()) + 20 and scanned["photos"]["photos"] == sum(truth.values())

    settings = AttackSettings(model=str(world_model_dir), people=tmp_path / "people", max_images=3,
                              n_candidates=50, occurrences=tmp_path / "scan" / "names.csv", progress=False,
                              command="pytest")
    result = run_attack(settings, loaded=world_model).result
    assert {p.name: p.occurrences for p in result.persons} == truth
    block = result.occurrences
    assert [(b["label"], b["n"]) for b in block["bins"]] == [("3-9", 1), ("10-29", 2), ("30-99", 1)]
    assert block["n_not_listed"] == 0 and block["sha256"] == result.manifest["inputs"]["occurrences_sha256"]
    html = render_html("audit", json.loads(result.to_json()))
    assert "Identification against occurrences in the training data" in html
    assert 'alt="share identified against captions naming the person"' in html
