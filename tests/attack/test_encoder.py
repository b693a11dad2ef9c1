"""The encode stage: caches verified and shared across processes, workers that change nothing, the per-person
question, streamed scores, precision."""

import csv
import gzip
import io
import json

import numpy as np
import pytest
from idia_testkit import noise_people
from PIL import Image

from idia.attack.encode.caches import TextCache
from idia.attack.encode.encoder import Encoder
from idia.attack.run import run_attack, write_attack
from idia.attack.settings import AttackSettings


def _settings(people, cache, **kw):
    from idia.world import shipped_model_dir
    return AttackSettings(model=str(shipped_model_dir()), people=people, cache_dir=cache, progress=False,
                          workers=0, **kw)


def test_image_embeddings_come_from_the_disk_cache_the_second_time(world_model, tmp_path):
    people = noise_people(tmp_path / "people")
    s = _settings(people, tmp_path / "cache", n_candidates=30)
    first = run_attack(s, loaded=world_model)
    second = run_attack(s, loaded=world_model)  # a new Encoder: nothing in memory, only the disk cache
    assert first.result.encoding["caches"]["images_encoded"] == 18
    assert second.result.encoding["caches"]["images_encoded"] == 0
    assert second.result.encoding["caches"]["images_from_cache"] == 18
    assert [b["from_cache"] for b in second.result.encoding["caches"]["text_blocks"]] == [True]
    assert [p.score for p in first.result.persons] == [p.score for p in second.result.persons]
    assert [p.mean_log_prob for p in first.result.persons] == [p.mean_log_prob for p in second.result.persons]


def test_a_tampered_text_cache_entry_with_the_right_shape_is_recomputed_with_a_warning(world_model, tmp_path):
    people = noise_people(tmp_path / "people")
    s = _settings(people, tmp_path / "cache", n_candidates=30)
    clean = run_attack(s, loaded=world_model)
    [entry] = (tmp_path / "cache" / "text").glob("*.npy")
    emb = np.load(entry)
    np.save(entry, emb[:, ::-1].copy())  # the names axis reversed: same shape, wrong answers
    notes = []
    again = run_attack(s, loaded=world_model, warn=notes.append)
    assert any("does not match its recorded SHA-256" in n and str(entry) in n for n in notes)
    assert again.result.encoding["caches"]["text_blocks"][0]["from_cache"] is False
    assert [p.score for p in again.result.persons] == [p.score for p in clean.result.persons]
    # ... and the entry is whole again: the third run reads it.
    third = run_attack(s, loaded=world_model)
    assert third.result.encoding["caches"]["text_blocks"][0]["from_cache"] is True


def test_a_damaged_image_cache_shard_is_ignored_with_a_warning(world_model, tmp_path):
    people = noise_people(tmp_path / "people")
    s = _settings(people, tmp_path / "cache", n_candidates=30)
    clean = run_attack(s, loaded=world_model)
    [shard] = (tmp_path / "cache" / "images").rglob("shard-*.npz")
    raw = bytearray(shard.read_bytes())
    raw[-40] ^= 0xFF
    shard.write_bytes(bytes(raw))
    notes = []
    again = run_attack(s, loaded=world_model, warn=notes.append)
    assert any("does not match its SHA-256; ignored" in n for n in notes)
    assert again.result.encoding["caches"]["images_encoded"] == 18
    assert [p.mean_log_prob for p in again.result.persons] == [p.mean_log_prob for p in clean.result.persons]


def test_worker_processes_give_the_same_embeddings_as_the_main_process(world_model, tmp_path):
    photos = sorted(noise_people(tmp_path / "people", n_people=3, n_photos=30).rglob("*.png"))
    alone = Encoder(world_model, device="cpu", workers=0, batch_size=16, use_cache=False, progress=False)
    pooled = Encoder(world_model, device="cpu", workers=2, batch_size=16, use_cache=False, progress=False)
    np.testing.assert_array_equal(alone.encode_photos(photos), pooled.encode_photos(photos))


def test_the_per_person_question_equals_a_shared_list_of_that_person_alone(world_model, tmp_path):
    people = noise_people(tmp_path / "people", n_people=8, n_photos=3)
    per = run_attack(_settings(people, tmp_path / "cache", n_candidates=20, candidate_set="per-person"),
                     loaded=world_model)
    assert per.result.candidates["question"] == "per-person"
    distractors = per.question.shared_names
    assert len(distractors) == 19 and not set(distractors) & {p.name for p in per.result.persons}
    for person in per.result.persons[:3]:
        alone = tmp_path / f"alone-{person.name}"
        (alone / person.name).mkdir(parents=True)
        for f in (people / person.name).iterdir():
            (alone / person.name / f.name).write_bytes(f.read_bytes())
        cand = tmp_path / f"cand-{person.name}.txt"
        cand.write_text("\n".join(distractors + [person.name]) + "\n")
        shared = run_attack(_settings(alone, tmp_path / "cache", candidates=cand, candidate_set="shared"),
                            loaded=world_model).result.persons[0]
        assert shared.score == person.score and shared.member == person.member
        assert shared.p_value == person.p_value
        assert [v.vote for v in shared.votes] == [v.vote for v in person.votes]
        assert shared.mean_log_prob == pytest.approx(person.mean_log_prob, abs=1e-5)
        assert shared.mean_rank == pytest.approx(person.mean_rank, abs=1e-6)


def test_auto_asks_per_person_when_more_people_than_names(world_model, tmp_path):
    people = noise_people(tmp_path / "people", n_people=8, n_photos=1)
    few = run_attack(_settings(people, tmp_path / "cache", n_candidates=5), loaded=world_model)
    many = run_attack(_settings(people, tmp_path / "cache", n_candidates=50), loaded=world_model)
    assert few.result.candidates["question"] == "per-person" and few.result.candidates["n"] == 5
    assert many.result.candidates["question"] == "shared" and many.result.candidates["n"] == 50
    assert few.result.rule["candidate_set"] == "per-person"
    for p in few.result.persons:  # every answer is one of the person's own five candidates
        allowed = set(few.question.shared_names) | {p.name}
        assert {v.vote for v in p.votes} - {None} <= allowed


def test_large_score_tables_are_streamed_gzip_compressed(world_model, tmp_path, monkeypatch):
    from idia.attack.record import scores as record_scores
    people = noise_people(tmp_path / "people", n_people=3, n_photos=2)
    run = run_attack(_settings(people, tmp_path / "cache", n_candidates=10), loaded=world_model)
    write_attack(run, tmp_path / "plain")
    monkeypatch.setattr(record_scores, "GZIP_ABOVE_ROWS", 10)
    write_attack(run, tmp_path / "plain")  # the same folder: the uncompressed table is replaced, not kept beside
    assert not (tmp_path / "plain" / "scores.csv").exists()
    packed = gzip.decompress((tmp_path / "plain" / "scores.csv.gz").read_bytes()).decode()
    rows = list(csv.DictReader(io.StringIO(packed)))
    assert len(rows) == 3 * 2 * 21
    record = json.loads((tmp_path / "plain" / "results.json").read_text())
    import hashlib
    assert record["manifest"]["outputs"]["scores.csv.gz"]["sha256"] == \
        hashlib.sha256((tmp_path / "plain" / "scores.csv.gz").read_bytes()).hexdigest()


def test_text_cache_key_depends_on_precision_and_device(world_model, tmp_path):
    cache = TextCache(tmp_path)
    k = cache.key(world_model, ["{0}"], ["A B"])
    assert k != cache.key(world_model, ["{0}"], ["A B"], precision="bf16")
    assert k != cache.key(world_model, ["{0}"], ["A B"], device_type="cuda")


@pytest.mark.slow
def test_bf16_verdicts_agree_with_fp32_on_the_world(world_model, world_photos, paper_run, tmp_path):
    from idia.world import shipped_model_dir
    s = AttackSettings(model=str(shipped_model_dir()), people=world_photos / "people", progress=False,
                       precision="bf16", cache_dir=tmp_path / "cache", rule="paper")
    bf16 = run_attack(s, loaded=world_model).result
    fp32 = paper_run.result
    paper = np.mean([a.member == b.member for a, b in zip(bf16.persons, fp32.persons)])
    perm = np.mean([a.evidence["permutation"]["flagged"] == b.evidence["permutation"]["flagged"]
                    for a, b in zip(bf16.persons, fp32.persons)])
    print(f"\nbf16 vs fp32 verdict agreement on the world: paper rule {paper:.3f}, permutation test {perm:.3f}")
    assert bf16.encoding["precision"] == "bf16" and bf16.manifest["runtime"]["precision"] == "bf16"
    assert paper >= 0.95 and perm >= 0.95


def test_fast_decode_reduces_only_jpegs_and_stays_within_tolerance(world_model, tmp_path):
    """--fast-decode: JPEGs decoded reduced in the DCT domain to at least twice the model's input; PNGs exact.
    Measured on camera-like 2000x1500 JPEGs with ViT-B-32 (bench/bench_photos.py): cosine >= 0.99999."""
    rng = np.random.default_rng(1)
    yy, xx = np.mgrid[0:600, 0:800].astype(np.float32)
    paths = []
    for i in range(3):
        base = np.stack([np.sin(xx * 0.01 + i), np.cos(yy * 0.013), np.sin((xx + yy) * 0.007)], axis=-1)
        img = (127 + 100 * base + rng.normal(0, 8, (600, 800, 3))).clip(0, 255).astype(np.uint8)
        Image.fromarray(img).save(tmp_path / f"{i}.jpg", quality=90)
        Image.fromarray(img).save(tmp_path / f"{i}.png")
        paths += [tmp_path / f"{i}.jpg", tmp_path / f"{i}.png"]
    exact = Encoder(world_model, device="cpu", use_cache=False, progress=False)
    fast = Encoder(world_model, device="cpu", use_cache=False, progress=False, fast_decode=True)
    assert fast.draft_to == 128 and exact.draft_to is None  # the world model reads 64 px
    a, b = exact.encode_photos(paths), fast.encode_photos(paths)
    np.testing.assert_array_equal(a[1::2], b[1::2])  # PNGs: untouched
    assert not np.array_equal(a[0::2], b[0::2])  # JPEGs: reduced (800x600 -> 200x150 at 1/4)
    assert (a[0::2] * b[0::2]).sum(axis=1).min() > 0.999
    assert exact.image_cache().directory != fast.image_cache().directory  # never mixed in the cache
