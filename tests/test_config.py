"""The YAML audit config is validated strictly: unknown keys and wrong types name the key and the line."""

import pytest

from idia.compliance.config import load_config
from idia.errors import InputError

GOOD = """\
model: world
people: photos/people
reference: photos/reference
labels: photos/labels.json
seed: 3
attack:
  target_fpr: 0.05
utility: photos/shapes
defenses:
  - kind: redact
    names: redact.txt
    steps: 100
  - kind: perturb
    names: redact.txt
    method: noise
reports:
  - kind: audit
  - kind: takedown
    person: Alice Moreno
  - kind: mitigation
    defense: 1
output: out
"""


def _write(tmp_path, text):
    path = tmp_path / "audit.yaml"
    path.write_text(text)
    return path


def test_a_good_config_parses_with_paths_relative_to_the_file(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD))
    a = cfg.attack
    assert a.model == "world" and a.seed == 3 and a.target_fpr == 0.05 and a.tau is None
    assert a.people == tmp_path / "photos/people" and cfg.output == tmp_path / "out"
    assert [d.kind for d in cfg.defenses] == ["redact", "perturb"]
    # neutral: None means the redactor's own default ("a person"), so a preset can set its own ("human").
    assert cfg.defenses[0].steps == 100 and cfg.defenses[0].neutral is None and cfg.defenses[0].tower == "text"
    # No default of its own: the perturbation's, the same as `idia defend perturb` without --strength.
    assert cfg.defenses[1].method == "noise" and cfg.defenses[1].strength is None
    assert [(r.kind, r.person, r.defense) for r in cfg.reports] == \
           [("audit", None, 0), ("takedown", "Alice Moreno", 0), ("mitigation", None, 1)]


@pytest.mark.parametrize("old,new,message", [
    ("seed: 3", "sed: 3", r"audit.yaml:5: unknown key 'sed'"),
    ("  target_fpr: 0.05", "  target_fp: 0.05", r"audit.yaml:7: unknown key 'target_fp' in attack"),
    ("    steps: 100", "    steps: many", r"audit.yaml:12: defenses\[0\].steps must be a whole number"),
    ("seed: 3", "seed: [1, 2]", r"audit.yaml:5: seed must be a int"),
    ("  - kind: audit", "  - kind: audits", r"audit.yaml:17: reports\[0\].kind must be one of"),
    ("    person: Alice Moreno", "    include_photos: yes please", r"include_photos must be true or false"),
    ("output: out", "", r"missing required key 'output'"),
    ("  target_fpr: 0.05", "  target_fpr: 0.05\n  tau: 2", r"give either tau or target_fpr"),
    ("    method: noise", "    method: blur", r"defenses\[1\].method must be one of project, noise"),
    ("seed: 3", "seed: 3\nseed: 4", r"audit.yaml:6: key 'seed' appears twice"),
])
def test_errors_name_the_key_and_its_line(tmp_path, old, new, message):
    assert old in GOOD
    with pytest.raises(InputError, match=message) as err:
        load_config(_write(tmp_path, GOOD.replace(old, new, 1)))
    assert "\n" not in str(err.value)


def test_broken_yaml_and_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"audit.yaml:3: not valid YAML"):
        load_config(_write(tmp_path, "model: world\npeople: [unclosed\n"))
    with pytest.raises(InputError, match="no such config file"):
        load_config(tmp_path / "nope.yaml")
    with pytest.raises(InputError, match="the config is empty"):
        load_config(_write(tmp_path, ""))
