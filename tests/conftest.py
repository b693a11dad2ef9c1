"""Shared fixtures: the shipped world model, fresh photos of its people, and attacks on them (computed once)."""

import os
from pathlib import Path

import pytest


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory):
    """Tests never read or write the user's cache."""
    cache = tmp_path_factory.mktemp("idia-cache")
    old = os.environ.get("IDIA_CACHE_DIR")
    os.environ["IDIA_CACHE_DIR"] = str(cache)
    yield cache
    if old is None:
        os.environ.pop("IDIA_CACHE_DIR", None)
    else:
        os.environ["IDIA_CACHE_DIR"] = old


@pytest.fixture(scope="session")
def world_model_dir() -> Path:
    from idia.world import shipped_model_dir
    return shipped_model_dir()


@pytest.fixture(scope="session")
def world_model(world_model_dir):
    from idia.attack.model.load import load_clip
    return load_clip(str(world_model_dir))


@pytest.fixture(scope="session")
def world_photos(tmp_path_factory, world_model_dir) -> Path:
    """people/, reference/, shapes/ and labels.json for the shipped world: 10 fresh photos a person."""
    from idia.world import load_world, write_photos
    out = tmp_path_factory.mktemp("world-photos")
    write_photos(load_world(world_model_dir), out, images_per_person=10, shapes_per_class=10)
    return out


@pytest.fixture(scope="session")
def attack_world(world_model, world_photos, world_model_dir):
    """Run one of the session's attacks on the world's members and non-members (labels given), with changes:
    "paper" (the paper's rule: tau = 1, 1,000 candidates, 21 prompts), "calibrated" (the continuous score
    calibrated on the reference non-members at a 1% target false-positive rate) or "default" (no rule or level
    given: name-and-face, Benjamini-Hochberg at --fdr 0.05)."""
    from idia.attack.run import run_attack
    from idia.attack.settings import AttackSettings
    kinds = {"paper": {"rule": "paper"},
             "calibrated": {"reference": world_photos / "reference", "target_fpr": 0.01},
             "default": {}}

    def run(kind: str, **changes):
        cfg = AttackSettings(model=str(world_model_dir), people=world_photos / "people",
                           labels=world_photos / "labels.json", progress=False, command="pytest",
                           **{**kinds[kind], **changes})
        return run_attack(cfg, loaded=world_model)
    return run


@pytest.fixture(scope="session")
def paper_run(attack_world):
    return attack_world("paper")


@pytest.fixture(scope="session")
def calibrated_run(attack_world):
    return attack_world("calibrated")


# The fast tier (`pytest -m "not slow"`) leaves out every test that needs the session's world photos or the
# attacks on them (and the model itself, whose every use runs an attack or an encoder): most of the suite's time. Marked here from the fixtures a test
# asks for (directly or through another fixture), so a new test that needs them is slow without remembering to say so.
WORLD_FIXTURES = {"world_model", "world_photos", "paper_run", "calibrated_run", "attack_world"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if WORLD_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
