"""Every checkpoint users bring: each format loads into open_clip and encodes like its own reference implementation
(transformers for Hugging Face folders, the original module for OpenAI archives and training checkpoints)."""

import json
import os
import pickle
import warnings
import zipfile

import open_clip
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from idia.attack.model.convert import convert_model
from idia.attack.model.formats import hf as hf_format
from idia.attack.model.formats.openclip_hub import HUB_CONFIG, HUB_WEIGHTS
from idia.attack.model.load import load_clip, save_hub_folder
from idia.errors import InputError

# Each test builds and runs small models of a format and its reference implementation: in the default run, not
# in the fast tier.
pytestmark = pytest.mark.slow

transformers = pytest.importorskip("transformers")

TEXTS = ["a photo of Alice Moreno", "Bob", "an unusually long caption about a small red square"]


def _features(out):
    """transformers 5 returns a model output whose pooler_output is the projected feature; older ones a tensor."""
    return F.normalize(getattr(out, "pooler_output", out), dim=-1)


def _hf_clip(tmp_path, name, text, vision, projection_dim=24, seed=0):
    torch.manual_seed(seed)
    cfg = transformers.CLIPConfig(text_config=dict(max_position_embeddings=16, **text),
                                  vision_config=dict(image_size=32, **vision), projection_dim=projection_dim)
    model = transformers.CLIPModel(cfg).eval()
    with torch.no_grad():  # a trained-looking scale, so a lost logit_scale would show
        model.logit_scale.fill_(3.7)
    folder = tmp_path / name
    model.save_pretrained(folder)
    return model, folder


SHAPES = {
    "quick-gelu": (dict(hidden_size=32, intermediate_size=128, num_hidden_layers=2, num_attention_heads=2),
                   dict(hidden_size=64, intermediate_size=256, num_hidden_layers=1, num_attention_heads=2,
                        patch_size=8)),
    "gelu-eps": (dict(hidden_size=48, intermediate_size=96, num_hidden_layers=1, num_attention_heads=3,
                      hidden_act="gelu", layer_norm_eps=1e-6),
                 dict(hidden_size=32, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4, patch_size=16,
                      hidden_act="gelu", layer_norm_eps=1e-6)),
    "tanh-legacy-eos": (dict(hidden_size=64, intermediate_size=160, num_hidden_layers=1, num_attention_heads=4,
                             hidden_act="gelu_pytorch_tanh", eos_token_id=2),
                        dict(hidden_size=48, intermediate_size=192, num_hidden_layers=1, num_attention_heads=1,
                             patch_size=16, hidden_act="gelu_pytorch_tanh")),
    "custom-eos": (dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=1,
                        eos_token_id=49400),
                   dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=2,
                        patch_size=8)),
}


def max_embedding_difference(ours, theirs, tokens, images):
    """Max |difference| of L2-normalised image and text embeddings between our open_clip model and transformers'."""
    with torch.no_grad():
        img = (ours.encode_image(images, normalize=True) - _features(theirs.get_image_features(pixel_values=images)))
        txt = (ours.encode_text(tokens, normalize=True) - _features(theirs.get_text_features(input_ids=tokens)))
    return max(img.abs().max().item(), txt.abs().max().item())


@pytest.mark.parametrize("shape", list(SHAPES))
def test_hf_folder_encodes_like_transformers(tmp_path, shape):
    text, vision = SHAPES[shape]
    reference, folder = _hf_clip(tmp_path, shape, text, vision)
    loaded = load_clip(str(folder))
    assert loaded.source_format == "hf-transformers"
    assert loaded.model_cfg["quick_gelu"] == (text.get("hidden_act", "quick_gelu") == "quick_gelu")
    tokens = loaded.tokenizer(TEXTS)  # open_clip's tokenizer, fed to both
    if text.get("eos_token_id") == 49400:  # a tokenizer whose end-of-text is not its largest id: pool at first eos
        tokens[tokens == 49407] = 49400
        assert loaded.model_cfg["text_cfg"]["pool_type"] == "eos"
    images = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    assert max_embedding_difference(loaded.model, reference, tokens, images) <= 1e-4
    assert loaded.model.logit_scale.item() == pytest.approx(3.7)
    # local-dir: names the same folder
    assert torch.equal(load_clip(f"local-dir:{folder}").model.encode_text(tokens), loaded.model.encode_text(tokens))


def test_hf_preprocessing_and_standard_tokenizer_are_taken_from_the_folder(tmp_path):
    reference, folder = _hf_clip(tmp_path, "m", *SHAPES["quick-gelu"])
    mean, std = [0.5, 0.4, 0.3], [0.2, 0.25, 0.3]
    processor = transformers.CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32},
                                                image_mean=mean, image_std=std, resample=2)
    processor.save_pretrained(folder)
    # The standard CLIP BPE, saved the way transformers saves it (vocab.json, merges.txt, tokenizer_config.json).
    bpe = open_clip.tokenizer.SimpleTokenizer()
    standard = {{"<start_of_text>": "<|startoftext|>", "<end_of_text>": "<|endoftext|>"}.get(k, k): v
                for k, v in bpe.encoder.items()}  # OpenAI's release spells the special tokens this way
    (tmp_path / "vocab.json").write_text(json.dumps(standard))
    merges = [" ".join(p) for p, _ in sorted(bpe.bpe_ranks.items(), key=lambda kv: kv[1])]
    (tmp_path / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n")
    hf_tok = transformers.CLIPTokenizer(str(tmp_path / "vocab.json"), str(tmp_path / "merges.txt"))
    hf_tok.save_pretrained(folder)
    loaded = load_clip(str(folder))
    assert loaded.preprocess_cfg["mean"] == mean and loaded.preprocess_cfg["std"] == std
    assert loaded.preprocess_cfg["interpolation"] == "bilinear" and loaded.preprocess_cfg["resize_mode"] == "shortest"
    from PIL import Image
    photo = Image.fromarray((torch.rand(32, 32, 3, generator=torch.Generator().manual_seed(2)) * 255).byte().numpy())
    ours = loaded.preprocess(photo)
    theirs = torch.as_tensor(transformers.CLIPImageProcessor.from_pretrained(folder)(photo, return_tensors="pt")
                             ["pixel_values"][0])
    assert (ours - theirs).abs().max().item() <= 1e-5
    # The folder's own tokenizer gives the ids open_clip's gives (up to open_clip's zero padding).
    ids = hf_tok(TEXTS[0])["input_ids"]
    assert loaded.tokenizer([TEXTS[0]])[0, :len(ids)].tolist() == ids
    # A tokenizer with another vocabulary is refused with one line.
    vocab = dict(standard)
    vocab["<|endoftext|>"], vocab["a</w>"] = vocab["a</w>"], vocab["<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "tokenizer.json").unlink(missing_ok=True)
    with pytest.raises(InputError, match="differs from the standard CLIP BPE") as err:
        load_clip(str(folder))
    assert "\n" not in str(err.value)


def test_hf_round_trip_through_open_clip_gives_identical_tensors(tmp_path):
    reference, folder = _hf_clip(tmp_path, "m", *SHAPES["gelu-eps"])
    convert_model(str(folder), tmp_path / "hub")
    assert (tmp_path / "hub" / HUB_CONFIG).is_file()
    assert load_clip(str(tmp_path / "hub")).source_format == "open_clip"
    convert_model(str(tmp_path / "hub"), tmp_path / "back", to="hf")
    from safetensors.torch import load_file
    original = load_file(str(folder / "model.safetensors"))
    written = load_file(str(tmp_path / "back" / "model.safetensors"))
    original = {k: v for k, v in original.items() if k not in hf_format.IGNORED}
    assert set(written) == set(original)
    assert all(torch.equal(written[k], original[k]) for k in original)
    # transformers reads the written folder and computes the same function.
    again = transformers.CLIPModel.from_pretrained(tmp_path / "back").eval()
    tokens = load_clip(str(folder)).tokenizer(TEXTS)
    images = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        assert torch.allclose(_features(again.get_text_features(input_ids=tokens)),
                              _features(reference.get_text_features(input_ids=tokens)), atol=1e-6)
        assert torch.allclose(_features(again.get_image_features(pixel_values=images)),
                              _features(reference.get_image_features(pixel_values=images)), atol=1e-6)


@settings(max_examples=25, deadline=None)
@given(text_layers=st.integers(0, 3), vision_layers=st.integers(0, 3), width=st.integers(1, 6),
       embed=st.integers(1, 5), seed=st.integers(0, 2**16))
def test_hf_tensor_mapping_is_invertible(text_layers, vision_layers, width, embed, seed):
    """open_clip -> transformers -> open_clip is the identity on every tensor, for any depth and width."""
    g = torch.Generator().manual_seed(seed)
    plan = hf_format.tensor_plan(text_layers, vision_layers)
    shapes = {"logit_scale": (), "text_projection": (width, embed), "visual.proj": (width, embed)}
    state = {}
    for oc, names, op in plan:
        shape = shapes.get(oc, (3 * width, width) if op == "cat" and oc.endswith("weight")
                           else (3 * width,) if op == "cat" else (width, width))
        state[oc] = torch.randn(shape, generator=g)
    back = hf_format.hf_to_openclip(hf_format.openclip_to_hf(state, plan), plan)
    assert set(back) == set(state) and all(torch.equal(back[k], state[k]) for k in state)


def test_hf_folders_that_cannot_be_mapped_get_one_line(tmp_path):
    _, folder = _hf_clip(tmp_path, "m", *SHAPES["quick-gelu"])
    config = json.loads((folder / "config.json").read_text())
    cases = []
    siglip = dict(config, model_type="siglip")
    cases.append((siglip, "a Hugging Face siglip model"))
    mixed = json.loads(json.dumps(config))
    mixed["text_config"]["hidden_act"] = "gelu"
    cases.append((mixed, "one tower uses quick_gelu"))
    relu = json.loads(json.dumps(config))
    relu["vision_config"]["hidden_act"] = "relu"
    cases.append((relu, "unsupported vision activation 'relu'"))
    for cfg, message in cases:
        (folder / "config.json").write_text(json.dumps(cfg))
        with pytest.raises(InputError, match=message) as err:
            load_clip(str(folder))
        assert "\n" not in str(err.value) and str(folder) in str(err.value)
    (folder / "config.json").write_text(json.dumps(config))
    from safetensors.torch import load_file, save_file
    extra = load_file(str(folder / "model.safetensors"))
    extra["text_model.encoder.layers.0.self_attn.q_norm.weight"] = torch.ones(32)
    save_file(extra, str(folder / "model.safetensors"))
    with pytest.raises(InputError, match="unsupported tensors for a CLIP: text_model.encoder.layers.0.self_attn.q_norm"):
        load_clip(str(folder))


# --------------------------------------------------------------------------------------------------------------
# OpenAI TorchScript archives

def _openai_clip(vision, seed=0):
    torch.manual_seed(seed)
    text = dict(context_length=16, vocab_size=49408, width=64, heads=1, layers=2)
    return open_clip.CLIP(embed_dim=32, vision_cfg=vision, text_cfg=text, quick_gelu=True).eval()


def _jit_archive(model, path, size):
    """A TorchScript archive as OpenAI shipped theirs: the module traced, in OpenAI's naming (open_clip's)."""
    images = torch.randn(2, 3, size, size)
    tokens = open_clip.tokenizer.SimpleTokenizer(context_length=16)(TEXTS[:2])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace_module(model, dict(encode_text=(tokens,), encode_image=(images,)), check_trace=False)
    torch.jit.save(traced, str(path))
    return path


@pytest.mark.parametrize("vision", [dict(layers=2, width=64, patch_size=8, image_size=32),
                                    dict(layers=1, width=128, patch_size=16, image_size=32, mlp_ratio=2.0),
                                    dict(layers=[1, 1, 1, 1], width=16, image_size=64)], ids=["vit-8", "vit-16", "rn"])
def test_openai_archive_loads_without_running_it_and_encodes_like_the_original(tmp_path, vision):
    original = _openai_clip(vision)
    archive = _jit_archive(original, tmp_path / "ViT-tiny.pt", vision["image_size"])
    loaded = load_clip(str(archive))
    assert loaded.source_format == "openai-torchscript" and loaded.model_cfg["quick_gelu"] is True
    tokens = loaded.tokenizer(TEXTS)
    images = torch.randn(3, 3, vision["image_size"], vision["image_size"])
    with torch.no_grad():
        assert torch.allclose(loaded.model.encode_image(images), original.encode_image(images), atol=1e-6)
        assert torch.allclose(loaded.model.encode_text(tokens), original.encode_text(tokens), atol=1e-6)
    # The same archive as --checkpoint beside an architecture config, and converted to the hub layout.
    convert_model(str(archive), tmp_path / "hub")
    again = load_clip(str(tmp_path / "hub"))
    with torch.no_grad():
        assert torch.equal(again.model.encode_text(tokens), loaded.model.encode_text(tokens))


def test_a_hostile_archive_is_refused_without_running_it(tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    archive = tmp_path / "evil.pt"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("evil/data.pkl", pickle.dumps({"visual.proj": Payload()}, protocol=2))
        z.writestr("evil/constants.pkl", pickle.dumps((), protocol=2))
        z.writestr("evil/code/__torch__/model.py", "")
    with pytest.raises(InputError, match=r"refused: the archive's pickle would run code \(it imports posix.system\)") as err:
        load_clip(str(archive))
    assert "\n" not in str(err.value) and str(archive) in str(err.value)
    assert not marker.exists()


# --------------------------------------------------------------------------------------------------------------
# training checkpoints, HF tokenizers named by open_clip configs, checks before allocating

TINY = {"embed_dim": 16, "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "head_width": 16,
                                        "patch_size": 16},
        "text_cfg": {"context_length": 8, "vocab_size": 49408, "width": 32, "heads": 2, "layers": 1}}


def test_training_checkpoint_loads_its_state_dict_only(tmp_path):
    torch.manual_seed(0)
    model = open_clip.CLIP(**TINY)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3)
    images, tokens = torch.randn(2, 3, 32, 32), open_clip.tokenizer.SimpleTokenizer(context_length=8)(["a", "b"])
    loss = model(images, tokens)[0].sum()
    loss.backward()
    optimizer.step()
    ckpt = tmp_path / "epoch_1.pt"
    torch.save({"epoch": 1, "name": "tiny-run", "optimizer": optimizer.state_dict(),
                "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, ckpt)
    (tmp_path / "tiny.json").write_text(json.dumps(TINY))
    loaded = load_clip(str(tmp_path / "tiny.json"), checkpoint=str(ckpt))
    model.eval()
    with torch.no_grad():
        assert torch.equal(loaded.model.encode_image(images), model.encode_image(images))
        assert torch.equal(loaded.model.encode_text(tokens), model.encode_text(tokens))


def test_a_config_naming_an_hf_tokenizer_reads_it_from_the_model_folder(tmp_path):
    from tokenizers import Tokenizer, models, pre_tokenizers
    torch.manual_seed(0)
    cfg = json.loads(json.dumps(TINY))
    cfg["text_cfg"]["hf_tokenizer_name"] = "timm/ViT-B-16-SigLIP"
    folder = tmp_path / "siglip-like"
    save_hub_folder(open_clip.CLIP(**TINY), cfg, {}, folder)
    with pytest.raises(InputError, match="its tokenizer \\(timm/ViT-B-16-SigLIP\\) is not in the model folder") as err:
        load_clip(str(folder))
    assert "\n" not in str(err.value)
    words = ["<pad>", "</s>", "<unk>", "a", "photo", "of", "alice"]
    tok = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = transformers.PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", eos_token="</s>",
                                                unk_token="<unk>")
    fast.save_pretrained(folder)
    loaded = load_clip(str(folder))
    ids = loaded.tokenizer(["a photo of alice"])
    assert ids.shape == (1, 8)
    assert ids[0, :4].tolist() == [3, 4, 5, 6]


def _refuse_real_builds(monkeypatch):
    """Fail the test (instead of allocating hundreds of gigabytes) if a model is built off the meta device."""
    import idia.attack.model.load as models
    real = models.instantiate
    built = []

    def guarded(cfg):
        device = torch.get_default_device()
        built.append(device.type)
        if device.type != "meta":
            raise AssertionError("a model was materialised before its shapes were checked")
        return real(cfg)

    monkeypatch.setattr(models, "instantiate", guarded)
    return built


def test_a_huge_config_beside_small_weights_fails_before_allocating(tmp_path, monkeypatch):
    save_hub_folder(open_clip.CLIP(**TINY), TINY, {}, tmp_path / "small")
    huge = json.loads(json.dumps(TINY))
    huge["text_cfg"].update(layers=64, width=8192, heads=64)
    huge["vision_cfg"].update(layers=64, width=8192, head_width=128)
    (tmp_path / "huge.json").write_text(json.dumps(huge))
    built = _refuse_real_builds(monkeypatch)
    for checkpoint in (tmp_path / "small" / HUB_WEIGHTS[0], tmp_path / "small.pt"):
        if checkpoint.suffix == ".pt":
            torch.save(open_clip.CLIP(**TINY).state_dict(), checkpoint)
        with pytest.raises(InputError, match="does not fit the architecture: missing .*shape mismatch") as err:
            load_clip(str(tmp_path / "huge.json"), checkpoint=str(checkpoint))
        assert str(checkpoint) in str(err.value) and "\n" not in str(err.value)
    assert built == ["meta", "meta"]


@pytest.mark.slow
def test_an_idia_on_the_world_converted_to_hf_gives_the_same_results(tmp_path, world_model_dir, world_photos, paper_run):
    """The shipped open_clip world written as a transformers folder, attacked from there: same people, scores,
    verdicts and p-values as the attack on the original folder."""
    from idia.attack.run import run_attack
    from idia.attack.settings import AttackSettings
    convert_model(str(world_model_dir), tmp_path / "hf", to="hf")
    loaded = load_clip(str(tmp_path / "hf"))
    assert loaded.source_format == "hf-transformers"
    cfg = AttackSettings(model=str(tmp_path / "hf"), people=world_photos / "people", rule="paper",
                       labels=world_photos / "labels.json", progress=False, command="pytest")
    run = run_attack(cfg, loaded=loaded)
    ours = [(p.name, p.score, p.member, p.p_value) for p in run.result.persons]
    theirs = [(p.name, p.score, p.member, p.p_value) for p in paper_run.result.persons]
    assert ours == theirs
    assert [p.mean_log_prob for p in run.result.persons] == pytest.approx(
        [p.mean_log_prob for p in paper_run.result.persons], abs=1e-4)


def test_convert_command_writes_the_hub_layout_and_gives_one_line_errors(tmp_path):
    from click.testing import CliRunner

    from idia.compliance.cli import main
    original = _openai_clip(dict(layers=1, width=64, patch_size=16, image_size=32))
    archive = _jit_archive(original, tmp_path / "tiny.pt", 32)
    ok = CliRunner().invoke(main, ["convert", str(archive), "--out", str(tmp_path / "hub"), "--quiet"])
    assert ok.exit_code == 0, ok.output
    assert ok.stdout.strip() == str(tmp_path / "hub" / HUB_WEIGHTS[0])
    tokens = open_clip.tokenizer.SimpleTokenizer(context_length=16)(TEXTS)
    with torch.no_grad():
        assert torch.allclose(load_clip(str(tmp_path / "hub")).model.encode_text(tokens), original.encode_text(tokens),
                              atol=1e-6)
    bad = CliRunner().invoke(main, ["convert", str(tmp_path / "hub"), "--to", "hf", "--out", str(tmp_path / "x"),
                                    "--checkpoint", str(tmp_path / "missing.safetensors")])
    assert bad.exit_code == 2
    lines = bad.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("idia: error: ") and "no such checkpoint file" in lines[0]
