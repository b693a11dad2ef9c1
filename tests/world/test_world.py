"""The synthetic identity world: deterministic, distinguishable, and separating members from non-members."""

import json

import numpy as np
import pytest

from idia.attack.inputs.names import first_names, last_names
from idia.world import WorldSpec, load_world, make_world, read_world_record, write_photos
from idia.world.world import STREAM_AUDIT, STREAM_TRAIN


def _pixels(image):
    return np.asarray(image).tobytes()


@pytest.mark.slow
def test_same_seed_same_names_split_and_image_bytes(tmp_path):
    spec = WorldSpec(seed=7, n_members=6, n_nonmembers=5, n_reference=4, n_shape_images=10)
    a, b = make_world(spec), make_world(spec)
    assert [(p.name, p.role, p.n_train_images) for p in a.identities] == \
           [(p.name, p.role, p.n_train_images) for p in b.identities]
    for p, q in zip(a.identities, b.identities):
        assert _pixels(a.photo(p, STREAM_AUDIT, 3)) == _pixels(b.photo(q, STREAM_AUDIT, 3))
    write_photos(a, tmp_path / "one", images_per_person=2, shapes_per_class=1)
    write_photos(b, tmp_path / "two", images_per_person=2, shapes_per_class=1)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.png"))
    assert files and files == sorted(p.relative_to(tmp_path / "two") for p in (tmp_path / "two").rglob("*.png"))
    for rel in files:
        assert (tmp_path / "one" / rel).read_bytes() == (tmp_path / "two" / rel).read_bytes()
    other = make_world(WorldSpec(seed=8, n_members=6, n_nonmembers=5, n_reference=4, n_shape_images=10))
    assert [p.name for p in other.identities] != [p.name for p in a.identities]


def test_training_and_audit_photos_differ():
    world = make_world(WorldSpec(n_members=2, n_nonmembers=0, n_reference=0, n_shape_images=0))
    person = world.members[0]
    assert _pixels(world.photo(person, STREAM_TRAIN, 0)) != _pixels(world.photo(person, STREAM_AUDIT, 0))


def test_roles_counts_and_occurrences_follow_the_spec():
    spec = WorldSpec(n_members=8, n_nonmembers=5, n_reference=3, images_per_member=(1, 5, 10, 25))
    world = make_world(spec)
    assert [len(world.by_role(r)) for r in ("member", "nonmember", "reference")] == [8, 5, 3]
    assert sorted(p.n_train_images for p in world.members) == [1, 1, 5, 5, 10, 10, 25, 25]
    assert all(p.n_train_images == 0 for p in world.identities if p.role != "member")


def test_names_are_mostly_unique_with_a_documented_confusable_minority():
    world = make_world(WorldSpec())
    names = [p.name for p in world.identities]
    assert len(set(names)) == len(names)
    firsts = [n.split()[0] for n in names]
    lasts = [n.split()[1] for n in names]
    shared = [p for p in world.identities if p.shares_name_with]
    assert 0.03 < len(shared) / len(names) < 0.2
    for p in shared:  # every shared name part is recorded
        first, last = p.name.split()
        other_first, other_last = p.shares_name_with.split()
        assert first == other_first or last == other_last
    # Apart from the deliberate minority, first and last names are each used once.
    assert len(set(firsts)) >= len(names) - 2 * len(shared)
    assert len(set(lasts)) >= len(names) - 2 * len(shared)
    assert set(firsts) <= set(first_names()) and set(lasts) <= set(last_names())


def test_bundled_name_lists_are_large_and_clean():
    assert len(first_names()) >= 300 and len(last_names()) >= 300
    assert not set(first_names()) & set(last_names())


def test_photo_folders_and_labels(world_photos, world_model_dir):
    labels = json.loads((world_photos / "labels.json").read_text())
    record = read_world_record(world_model_dir)
    assert labels == {n: r == "member" for n, r in record["membership"].items() if r != "reference"}
    people = sorted(p.name for p in (world_photos / "people").iterdir())
    assert people == sorted(labels)
    refs = [p.name for p in (world_photos / "reference").iterdir()]
    assert refs and not set(refs) & set(labels)
    assert all(len(list((world_photos / "people" / n).glob("*.png"))) == 10 for n in people)
    assert len(list((world_photos / "shapes").iterdir())) == 36


def test_recorded_world_matches_its_generator(world_model_dir):
    world = load_world(world_model_dir)
    record = read_world_record(world_model_dir)
    assert {p.name: p.n_train_images for p in world.members} == record["train_images_per_member"]


def test_shipped_model_ranks_members_true_names_far_above_non_members(paper_run):
    from sklearn.metrics import (
        roc_auc_score,  # slow tests only: the fast tier never pays for the import
    )
    persons = paper_run.result.persons
    y = np.array([p.label for p in persons])
    rank = np.array([p.mean_rank for p in persons])
    logp = np.array([p.mean_log_prob for p in persons])
    # Median rank of the true name among 1,000 candidates: members near the top, non-members near the middle.
    assert np.median(rank[y]) < 20
    assert np.median(rank[~y]) > 200
    assert roc_auc_score(y, logp) > 0.97
    assert roc_auc_score(y, -rank) > 0.97


@pytest.mark.slow
def test_a_small_world_trains_from_scratch_and_separates(tmp_path):
    """The trainer itself, on a 20 + 20 person world at 32 px in 8-px patches (16 tokens a photo)."""
    import torch

    from idia.world.train import TrainSpec, default_config, train_world_model
    spec = WorldSpec(seed=3, n_members=20, n_nonmembers=20, n_reference=0, images_per_member=(20,),
                     n_shape_images=200, image_size=32)
    cfg = default_config()
    cfg["vision_cfg"].update(image_size=32, patch_size=8)
    world = make_world(spec)
    model, _, record = train_world_model(world, TrainSpec(steps=120, batch_size=128, seed=3), cfg, progress=False)
    assert record["loss_last"] < record["loss_first"] - 1.0
    from idia.attack.model.tokenizer import make_tokenizer
    from idia.world.train import OPENAI_MEAN, OPENAI_STD
    tok = make_tokenizer(cfg)
    people = [p for p in world.identities]
    with torch.no_grad():
        text = model.encode_text(tok([f"a photo of {p.name}" for p in people]), normalize=True)
        scores = []
        mean = torch.tensor(OPENAI_MEAN).view(1, 3, 1, 1)
        std = torch.tensor(OPENAI_STD).view(1, 3, 1, 1)
        for i, p in enumerate(people):
            pix = torch.stack([torch.from_numpy(np.asarray(world.photo(p, STREAM_AUDIT, k)).copy()).permute(2, 0, 1)
                               for k in range(5)]).float() / 255
            img = model.encode_image((pix - mean) / std, normalize=True)
            scores.append(float(torch.log_softmax(50 * img @ text.T, dim=1)[:, i].mean()))
    from sklearn.metrics import roc_auc_score
    y = [p.role == "member" for p in people]
    # Measured 1.000 on seeds 3 to 6 at this size (4-px patches and 200 steps gave 0.83-0.99); a margin below.
    assert roc_auc_score(y, scores) > 0.9


@pytest.mark.slow
def test_cli_world_photos_writes_the_folders_and_labels(tmp_path, world_model_dir):
    from click.testing import CliRunner

    from idia.compliance.cli import main
    result = CliRunner().invoke(main, ["world", "photos", "--out", str(tmp_path), "--images", "1", "--shapes", "1"])
    assert result.exit_code == 0, result.output
    labels = json.loads((tmp_path / "labels.json").read_text())
    record = read_world_record(world_model_dir)
    assert sum(labels.values()) == record["spec"]["n_members"]
    assert len(list((tmp_path / "reference").iterdir())) == record["spec"]["n_reference"]
    assert all(len(list(d.iterdir())) == 1 for d in (tmp_path / "people").iterdir())
