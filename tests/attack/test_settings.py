"""One settings object: the command line and the YAML audit refuse exactly the same values, each with one line."""

import dataclasses

import pytest
from click.testing import CliRunner

from idia.attack.settings import AttackSettings, check_value, yaml_keys
from idia.compliance.cli import main
from idia.compliance.config import load_config
from idia.errors import InputError

# (field, bad value, what the message says)
BAD = [
    ("seed", -1, "must be between 0 and"),
    ("max_images", -3, "must be at least 1"),
    ("max_images", 0, "must be at least 1"),
    ("n_candidates", 0, "must be at least 2"),
    ("n_candidates", 1, "must be at least 2"),
    ("tau", 0, "must be at least 1"),
    ("target_fpr", 1.5, "must be between 0 and 1"),
    ("device", "gpu", "must be auto, cpu, cuda, cuda:N or mps"),
    ("workers", -1, "must be at least 0"),
    ("batch_size", 0, "must be at least 1"),
]


@pytest.mark.parametrize("name,value,says", BAD)
def test_the_command_line_refuses_with_one_line_naming_the_flag(tmp_path, name, value, says):
    flag = AttackSettings.__dataclass_fields__[name].metadata["flag"]
    (tmp_path / "people").mkdir()
    result = CliRunner().invoke(main, ["attack", "--model", "world", "--people", str(tmp_path / "people"),
                                       flag, str(value), "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"idia: error: {flag} ") and says in lines[0]
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("name,value,says", BAD)
def test_the_yaml_audit_refuses_the_same_values_naming_file_and_line(tmp_path, name, value, says):
    key = next(k for k, (field, _) in yaml_keys().items() if field == name)
    lines = ["model: world", "people: photos/people", "output: out"]
    if key.startswith("attack."):
        lines += ["attack:", f"  {key.split('.')[1]}: {value}"]
    else:
        lines.append(f"{key}: {value}")
    path = tmp_path / "audit.yaml"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}:{len(lines)}: ") and says in str(e.value)


def test_yaml_defense_steps_zero_is_refused_before_anything_runs(tmp_path):
    path = tmp_path / "audit.yaml"
    path.write_text("model: world\npeople: p\noutput: out\ndefenses:\n  - kind: redact\n    names: r.txt\n"
                    "    steps: 0\n")
    with pytest.raises(InputError, match=r"audit.yaml:7: defenses\[0\].steps must be at least 1"):
        load_config(path)


def test_every_setting_with_a_flag_or_key_has_help_and_a_check_where_values_can_be_wrong():
    for f in dataclasses.fields(AttackSettings):
        meta = f.metadata
        assert meta["help"]
        if meta["kind"] in ("int", "float", "choice") or f.name == "device":
            assert meta["check"] is not None, f.name


def test_validate_accepts_the_defaults_and_refuses_tau_with_target_fpr():
    AttackSettings(model="m", people="p").validate()
    with pytest.raises(InputError, match="either --tau or --target-fpr"):
        AttackSettings(model="m", people="p", tau=1, target_fpr=0.05).validate()
    assert check_value("seed", True) == "must be a whole number, got True"


def test_a_device_that_is_not_there_is_one_line(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    from idia.attack.model.device import resolve_device
    with pytest.raises(InputError, match="--device cuda: no CUDA device is available"):
        resolve_device("cuda")
    assert resolve_device("auto").type == "cpu"


def test_the_distractor_draw_and_attributes_are_yaml_keys_too(tmp_path):
    path = tmp_path / "audit.yaml"
    path.write_text("model: world\npeople: p\noutput: out\ndistractor_draw: uniform\nattributes: people.csv\n")
    cfg = load_config(path)
    assert cfg.attack.distractor_draw == "uniform" and cfg.attack.attributes == tmp_path / "people.csv"
    path.write_text("model: world\npeople: p\noutput: out\ndistractor_draw: sorted\n")
    with pytest.raises(InputError) as e:
        load_config(path)
    assert str(e.value).startswith(f"{path}:4: ") and "must be one of balanced, uniform" in str(e.value)
