"""The one loader: the shipped model loads like a user's, and every kind of bad input gets its one-line error."""

import json
import shutil
import subprocess
import sys
import time

import pytest
import torch
from idia_testkit import assert_one_line_error, photo, run_idia
from PIL import Image

from idia.attack.model.formats.openclip_hub import HUB_CONFIG, HUB_WEIGHTS
from idia.attack.model.formats.statedict import read_state_dict
from idia.attack.model.load import load_clip
from idia.errors import InputError
from idia.io import sha256_file
from idia.world import read_world_record


def test_shipped_checkpoint_loads_and_matches_its_recorded_sha256(world_model_dir):
    record = read_world_record(world_model_dir)
    loaded = load_clip(str(world_model_dir))
    assert loaded.checkpoint_sha256 == record["checkpoint_sha256"]
    assert loaded.checkpoint_sha256 == sha256_file(world_model_dir / HUB_WEIGHTS[0])
    assert not loaded.model.training
    assert loaded.context_length == 16


@pytest.mark.slow
def test_same_weights_through_every_route(world_model_dir, tmp_path):
    via_dir = load_clip(str(world_model_dir))
    via_local_dir = load_clip(f"local-dir:{world_model_dir}")
    # A JSON architecture config (the hub config file itself, and a bare model_cfg) with --checkpoint.
    bare = tmp_path / "tiny.json"
    bare.write_text(json.dumps(json.loads((world_model_dir / HUB_CONFIG).read_text())["model_cfg"]))
    via_json = load_clip(str(world_model_dir / HUB_CONFIG), checkpoint=str(world_model_dir / HUB_WEIGHTS[0]))
    via_bare = load_clip(str(bare), checkpoint=str(world_model_dir / HUB_WEIGHTS[0]))
    # A .pt copy of the same state dict, read with weights_only=True.
    pt = tmp_path / "weights.pt"
    torch.save(via_dir.model.state_dict(), pt)
    via_pt = load_clip(str(bare), checkpoint=str(pt))
    tokens = via_dir.tokenizer(["a photo of someone"])
    ref = via_dir.model.encode_text(tokens)
    for other in (via_local_dir, via_json, via_bare, via_pt):
        assert torch.equal(other.model.encode_text(tokens), ref)
    assert via_json.checkpoint_sha256 == via_dir.checkpoint_sha256


def _bad(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


class Gadget:  # a class a malicious pickle would need to import
    def __reduce__(self):
        return (time.sleep, (0,))  # a plain library function (print may be patched once Ray is imported)


def test_loading_errors_name_the_file_and_the_problem(tmp_path, world_model_dir):
    config = str(world_model_dir / HUB_CONFIG)
    cases = [
        (dict(model="ViT-B-32", checkpoint=str(tmp_path / "missing.safetensors")), "no such checkpoint file"),
        (dict(model=config, checkpoint=_bad(tmp_path, "junk.safetensors", b"not a checkpoint at all")),
         "not a readable safetensors checkpoint"),
        (dict(model=config, checkpoint=_bad(tmp_path, "junk.pt", b"plain text, not a pickle")), "not a checkpoint"),
        (dict(model="hf-hub:laion/CLIP-ViT-B-32-laion2B-s34B-b79K"), "works offline"),
        (dict(model="ViT-B-32", checkpoint="openai"), "download tag"),
        (dict(model="No-Such-Arch-99"), "neither a local file or folder nor a known open_clip architecture"),
        (dict(model=str(tmp_path)), "not an open_clip model folder"),
        (dict(model=str(world_model_dir / HUB_WEIGHTS[0])), "pass the architecture name"),
        (dict(model=config), "no checkpoint given"),
    ]
    for kwargs, message in cases:
        with pytest.raises(InputError, match=message) as err:
            load_clip(**kwargs)
        assert "\n" not in str(err.value)


def test_a_pickle_that_needs_code_is_refused(tmp_path, world_model_dir):
    path = tmp_path / "evil.pt"
    torch.save({"visual.proj": torch.zeros(1), "payload": Gadget()}, path)
    with pytest.raises(InputError, match="refused: this pickle would need to run code.*it imports time.sleep"):
        read_state_dict(path)


def test_a_state_dict_that_does_not_fit_names_the_first_mismatched_keys(tmp_path, world_model_dir):
    state = read_state_dict(world_model_dir / HUB_WEIGHTS[0])
    state.pop("text_projection")
    state["visual.extra_head.weight"] = torch.zeros(3)
    state["token_embedding.weight"] = torch.zeros(10, 4)
    path = tmp_path / "wrong.pt"
    torch.save(state, path)
    with pytest.raises(InputError) as err:
        load_clip(str(world_model_dir / HUB_CONFIG), checkpoint=str(path))
    msg = str(err.value)
    assert "does not fit the architecture" in msg
    assert "missing text_projection" in msg
    assert "unexpected visual.extra_head.weight" in msg
    assert "token_embedding.weight (10, 4) vs (49408, 64)" in msg


@pytest.mark.slow
def test_cli_gives_one_line_and_exit_status_2(tmp_path, world_model_dir):
    shutil.copytree(world_model_dir, tmp_path / "model")
    (tmp_path / "model" / HUB_WEIGHTS[0]).write_bytes(b"\x00" * 64)
    (tmp_path / "people" / "Some One").mkdir(parents=True)
    Image.new("RGB", (32, 32), "grey").save(tmp_path / "people" / "Some One" / "a.png")  # someone auditable
    proc = subprocess.run([sys.executable, "-m", "idia", "attack", "--model", str(tmp_path / "model"),
                           "--people", str(tmp_path / "people"), "--out", str(tmp_path / "out"), "--quiet"],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("idia: error: ")
    assert str(tmp_path / "model" / HUB_WEIGHTS[0]) in lines[0]
    assert not (tmp_path / "out" / "results.json").exists()


def test_a_text_file_as_checkpoint_is_one_line(tmp_path, world_model_dir):
    ck = tmp_path / "weights.pt"
    ck.write_text("these are not weights\n")
    photo(tmp_path / "people" / "Ada Byron" / "a.png")
    proc = run_idia("attack", "--model", world_model_dir / "open_clip_config.json", "--checkpoint", ck,
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
