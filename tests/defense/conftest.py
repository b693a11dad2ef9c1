"""Fixtures the defense tests share, each computed once a session: identified members of the world to redact,
their names file, and the verified text and image redactions several test modules read."""


import json

import pytest
from idia_testkit import pick_members, world_attack

from idia.attack.settings import AttackSettings
from idia.defense.verify import VerifyConfig, verify, write_verification


@pytest.fixture(scope="session")
def redacted_names(paper_run, world_model_dir):
    return pick_members(paper_run, world_model_dir)


@pytest.fixture(scope="session")
def names_file(tmp_path_factory, redacted_names):
    path = tmp_path_factory.mktemp("names") / "redact.txt"
    path.write_text("\n".join(redacted_names) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def redact_names(paper_run, world_model_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("names2") / "redact.txt"
    path.write_text("\n".join(pick_members(paper_run, world_model_dir)) + "\n", encoding="utf-8")
    return path


@pytest.fixture(scope="session")
def image_verification(world_model, world_model_dir, world_photos, redact_names, tmp_path_factory):
    out = tmp_path_factory.mktemp("verify-image")
    # Judged as the defaults were chosen (bench/bench_face_redaction.py, idia.defense.tuning): each person on their
    # own by the permutation test at alpha 0.01.
    attack = world_attack(world_model_dir, world_photos).replace(rule="permutation", alpha=0.01)
    cfg = VerifyConfig(attack=attack, names=redact_names, tower="image",
                       utility=world_photos / "shapes", probes=False, relearn_steps=(20,), out=out)
    v = verify(cfg, loaded=world_model)
    path = write_verification(v, out)
    return v, json.loads(path.read_text(encoding="utf-8")), out


@pytest.fixture(scope="session")
def redaction(world_model, world_model_dir, world_photos, names_file, tmp_path_factory):
    """One verified redaction (default settings) shared by the tests below."""
    attack = AttackSettings(model=str(world_model_dir), people=world_photos / "people", rule="paper",
                          labels=world_photos / "labels.json", progress=False, command="pytest")
    cfg = VerifyConfig(attack=attack, names=names_file, utility=world_photos / "shapes", defense="redact")
    v = verify(cfg, loaded=world_model)
    out = tmp_path_factory.mktemp("verify-redact")
    path = write_verification(v, out)
    return v, out, json.loads(path.read_text(encoding="utf-8"))
