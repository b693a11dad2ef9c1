"""Engines: the local DataLoader path and Ray Data actors give the same persons, scores, verdicts and p-values;
an interrupted run resumes from the image cache and encodes only what is missing."""

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from idia_testkit import world_subset

import idia.attack.encode.encoder as encoder_module
from idia.attack.encode.caches import ImageCache
from idia.attack.encode.encoder import Encoder
from idia.attack.encode.engines import ENGINES, engine_names, make_engine
from idia.attack.encode.engines.local import LocalEngine
from idia.attack.run import run_attack, write_attack
from idia.attack.settings import AttackSettings
from idia.compliance.cli import main
from idia.compliance.config import load_config
from idia.errors import InputError

# --- without Ray ---------------------------------------------------------------------------------------------

def test_the_registry_lists_both_engines_and_refuses_others_in_one_line():
    assert {"local", "ray"} <= set(engine_names())
    assert isinstance(make_engine("local"), LocalEngine)
    with pytest.raises(InputError, match=r"^--engine must be one of local, ray, got 'spark'$"):
        make_engine("spark")


@pytest.mark.parametrize("changes,says", [
    ({"engine": "spark"}, "--engine must be one of"),
    ({"engine": "ray", "ray_address": "not an address"}, "--ray-address must be auto, ray://HOST:PORT"),
    ({"ray_address": "auto"}, "--ray-address is for --engine ray"),
])
def test_bad_engine_settings_are_refused_naming_the_flag(changes, says):
    with pytest.raises(InputError, match=says):
        AttackSettings(model="world", people=Path("p"), **changes).validate()


@pytest.mark.parametrize("address", ["auto", "ray://head.example:10001", "10.0.0.5:6379"])
def test_cluster_addresses_are_accepted(address):
    assert AttackSettings(model="world", people=Path("p"), engine="ray", ray_address=address).validate().engine == "ray"


@pytest.mark.parametrize("command", [["attack"], ["verify"], ["defend", "sweep"]])
def test_engine_flags_are_on_every_command_that_runs_the_attack(command):
    result = CliRunner().invoke(main, command + ["--help"])
    assert result.exit_code == 0
    assert "--engine [local|ray]" in result.output and "--ray-address" in result.output


def test_the_yaml_audit_takes_the_engine_and_refuses_a_bad_one_naming_the_line(tmp_path):
    path = tmp_path / "audit.yaml"
    path.write_text("model: world\npeople: p\noutput: out\nengine: ray\nray_address: auto\n")
    cfg = load_config(path)
    assert (cfg.attack.engine, cfg.attack.ray_address) == ("ray", "auto")
    path.write_text("model: world\npeople: p\noutput: out\nengine: spark\n")
    with pytest.raises(InputError, match=r"audit.yaml:4: .*must be one of local, ray"):
        load_config(path)


class ShuffledEngine:
    """The local engine's rows handed back in a drawn order and batching, as a distributed engine returns them."""

    name = "shuffled-test"
    draw = None  # (order, cut points), set by the test

    def device_type(self, encoder):
        return encoder.torch_device.type

    def encode(self, encoder, paths, sha256s=None):
        rows = {}
        for positions, emb in LocalEngine().encode(encoder, paths, sha256s):
            rows.update(zip(positions, emb))
        order, cuts = self.draw
        order = [p for p in order if p < len(paths)]
        for chunk in np.split(np.array(order), sorted({c % max(1, len(order)) for c in cuts})):
            if len(chunk):
                yield chunk.tolist(), np.stack([rows[p] for p in chunk])

    def describe(self):
        return {"name": self.name}


@pytest.fixture(scope="module")
def few_photos(world_photos):
    paths = sorted((world_photos / "people").rglob("*.png"))[:12]
    from idia.io import sha256_file
    return paths, [sha256_file(p) for p in paths]


@hsettings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.permutations(list(range(12))), cuts=st.lists(st.integers(0, 11), max_size=6),
       repeat=st.integers(0, 11))
def test_rows_in_any_order_and_batching_land_where_the_local_engine_puts_them(world_model, few_photos, tmp_path,
                                                                              order, cuts, repeat):
    """The Encoder places an engine's rows by position and keys the cache by photo: the obvious twin is the local
    engine in order. A repeated photo (same SHA-256) is encoded once and shared."""
    paths, hashes = few_photos
    paths, hashes = paths + [paths[repeat]], hashes + [hashes[repeat]]
    local = Encoder(world_model, use_cache=False, progress=False).encode_photos(paths, hashes)
    ShuffledEngine.draw = (order, cuts)
    cache_dir = tmp_path / f"c{abs(hash((tuple(order), tuple(cuts), repeat)))}"
    enc = Encoder(world_model, cache_dir=cache_dir, progress=False, engine="shuffled-test")
    with ENGINES.registered(ShuffledEngine):
        np.testing.assert_array_equal(enc.encode_photos(paths, hashes), local)
    assert enc.log.images_encoded == 12
    cache = ImageCache(enc.image_cache().directory)
    np.testing.assert_array_equal(np.stack([cache.get(h) for h in hashes]), local)


# --- on a local Ray with 2 CPUs ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module, bound to 127.0.0.1 (never the network), shut down afterwards."""
    pytest.importorskip("ray.data")
    from idia.attack.encode.engines.ray import start_ray
    ray = start_ray(None, num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def few_people(world_photos, tmp_path_factory):
    """40 audited and 30 reference people of the world (enough to calibrate at a 5% target)."""
    return world_subset(world_photos, tmp_path_factory.mktemp("few-people"), 40, 30)


def _settings(few_people, world_model_dir, cache_dir, **changes):
    return AttackSettings(model=str(world_model_dir), people=few_people / "people",
                          reference=few_people / "reference", labels=few_people / "labels.json",
                          target_fpr=0.05, max_images=3, cache_dir=cache_dir, progress=False, command="pytest",
                          **changes)


@pytest.fixture(scope="module")
def local_run(world_model, few_people, world_model_dir, tmp_path_factory):
    return run_attack(_settings(few_people, world_model_dir, tmp_path_factory.mktemp("local-cache")),
                      loaded=world_model)


def _assert_same_outcome(ray_result: dict, local_result: dict):
    for group in ("persons", "reference"):
        got, want = ray_result[group], local_result[group]
        assert [p["name"] for p in got] == [p["name"] for p in want]
        assert [p["member"] for p in got] == [p["member"] for p in want]
        assert [p["score"] for p in got] == [p["score"] for p in want]
        assert [p["p_value"] for p in got] == [p["p_value"] for p in want]
        for key in ("mean_log_prob", "mean_rank", "mean_prob"):
            np.testing.assert_allclose([p[key] for p in got], [p[key] for p in want], rtol=1e-5, atol=1e-6)
    assert ray_result["calibration"]["threshold"] == pytest.approx(local_result["calibration"]["threshold"],
                                                                   rel=1e-5, abs=1e-6)


@pytest.mark.slow
def test_idia_attack_engine_ray_gives_the_local_engines_persons_scores_verdicts_and_p_values(
        local_ray, local_run, few_people, world_model_dir, tmp_path):
    local = local_run.result.to_dict()
    assert local["encoding"]["engine"] == {"name": "local"}
    result = CliRunner().invoke(main, [
        "attack", "--model", str(world_model_dir), "--people", str(few_people / "people"),
        "--reference", str(few_people / "reference"), "--labels", str(few_people / "labels.json"),
        "--target-fpr", "0.05", "--max-images", "3", "--cache-dir", str(tmp_path / "cache"),
        "--engine", "ray", "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 0, result.output
    got = json.loads((tmp_path / "out" / "results.json").read_text())
    _assert_same_outcome(got, local)
    n = local["encoding"]["caches"]["images_encoded"]
    assert n > 0 and got["encoding"]["caches"]["images_encoded"] == n
    assert got["encoding"]["engine"] == {"name": "ray", "address": "local", "actors": 2, "actor_device": "cpu"}
    assert got["manifest"]["runtime"]["engine"]["name"] == "ray"


@pytest.mark.slow
def test_an_interrupted_ray_run_resumes_from_the_cache_and_encodes_only_what_is_missing(
        local_ray, local_run, few_people, world_model, world_model_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(encoder_module, "SHARD_EVERY", 4)
    original, calls, written = ImageCache.add, [], set()

    def add_then_interrupt(self, sha256s, emb):
        original(self, sha256s, emb)
        calls.append(len(sha256s))
        written.update(sha256s)
        if len(calls) == 2:
            raise KeyboardInterrupt("test: interrupted after two shards")

    monkeypatch.setattr(ImageCache, "add", add_then_interrupt)
    settings = _settings(few_people, world_model_dir, tmp_path / "cache", engine="ray", batch_size=8)
    with pytest.raises(KeyboardInterrupt):
        run_attack(settings, loaded=world_model)
    kept = len(written)  # the shards written, the last of them by the encoder's clean-up
    total = local_run.result.encoding["caches"]["images_encoded"]
    assert 8 <= kept < total

    monkeypatch.setattr(ImageCache, "add", original)
    rerun = run_attack(settings, loaded=world_model)
    caches = rerun.result.encoding["caches"]
    assert caches["images_from_cache"] == kept
    assert caches["images_encoded"] == total - kept
    _assert_same_outcome(rerun.result.to_dict(), local_run.result.to_dict())
    write_attack(rerun, tmp_path / "out")  # the resumed run records like any other


@pytest.mark.slow
def test_idia_scan_engine_ray_counts_what_the_local_engine_counts(local_ray, tmp_path):
    from idia.world.caption_set import labelled_captions
    captions = labelled_captions(2000, seed=2, n_people=80).captions
    (tmp_path / "src").mkdir()
    for i in range(4):
        (tmp_path / "src" / f"part-{i}.txt").write_text("\n".join(captions[i::4]) + "\n", encoding="utf-8")
    for engine in ("local", "ray"):
        result = CliRunner().invoke(main, ["scan", str(tmp_path / "src"), "--out", str(tmp_path / engine),
                                           "--engine", engine, "--quiet"])
        assert result.exit_code == 0, result.output
    rows = {e: [r.split(",")[:3] for r in (tmp_path / e / "names.csv").read_text().splitlines()]
            for e in ("local", "ray")}
    assert rows["ray"] == rows["local"] and len(rows["local"]) > 50
    record = json.loads((tmp_path / "ray" / "scan.json").read_text())
    assert record["engine"]["name"] == "ray" and record["captions"] == 2000
