"""The YAML audit config is validated strictly: unknown keys and wrong types name the key and the line."""



import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from idia_testkit import assert_one_line_error, run_idia

from idia.compliance.config import load_config
from idia.errors import InputError

FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

# Control characters are not names (and PyYAML writes U+0085 raw, which YAML then reads as a line break).
safe_text = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x2FF, exclude_categories=("Cc",)),
                    min_size=1, max_size=12).filter(lambda s: s.strip() and s == s.strip())
rel_path = st.lists(st.text("abcxyz-_0123456789", min_size=1, max_size=6), min_size=1, max_size=3).map("/".join)

rel_path = st.lists(st.text("abcxyz-_0123456789", min_size=1, max_size=6), min_size=1, max_size=3).map("/".join)

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


@st.composite
def configs(draw):
    cfg = {"model": "world", "people": draw(rel_path), "output": draw(rel_path),
           "seed": draw(st.integers(0, 2**31)), "n_candidates": draw(st.integers(2, 5000))}
    for key in ("reference", "labels", "candidates", "prompts", "utility"):
        if draw(st.booleans()):
            cfg[key] = draw(rel_path)
    if draw(st.booleans()):
        cfg["max_images"] = draw(st.integers(1, 100))
    cfg["attack"] = draw(st.sampled_from([{}, {"tau": 2}, {"target_fpr": 0.05}]))
    defenses = draw(st.lists(st.fixed_dictionaries({"kind": st.just("redact"), "names": rel_path,
                                                    "neutral": safe_text, "steps": st.integers(1, 500)}),
                             max_size=2))
    cfg["defenses"] = defenses
    reports = [{"kind": "audit"}] + draw(st.lists(st.fixed_dictionaries(
        {"kind": st.just("takedown"), "person": safe_text, "include_photos": st.booleans()}), max_size=3))
    if defenses:
        reports.append({"kind": "mitigation", "defense": draw(st.integers(0, len(defenses) - 1))})
    cfg["reports"] = reports
    return cfg


@FAST
@given(configs())
def test_yaml_configs_round_trip(tmp_path_factory, cfg):
    folder = tmp_path_factory.mktemp("cfg")
    path = folder / "audit.yaml"
    path.write_text(yaml.safe_dump(cfg, allow_unicode=True, sort_keys=False), encoding="utf-8")
    got = load_config(path)
    base = folder.absolute()
    a = got.attack
    for key in ("people", "reference", "labels", "candidates", "prompts"):
        assert getattr(a, key) == (base / cfg[key] if key in cfg else None)
    for key in ("output", "utility"):
        assert getattr(got, key) == (base / cfg[key] if key in cfg else None)
    assert (a.model, a.seed, a.n_candidates, a.max_images) == (
        "world", cfg["seed"], cfg["n_candidates"], cfg.get("max_images"))
    assert (a.tau, a.target_fpr) == (cfg["attack"].get("tau"), cfg["attack"].get("target_fpr"))
    assert [(d.kind, d.names, d.neutral, d.steps) for d in got.defenses] == [
        ("redact", base / d["names"], d["neutral"], d["steps"]) for d in cfg["defenses"]]
    assert [(r.kind, r.person, r.include_photos, r.defense) for r in got.reports] == [
        (r["kind"], r.get("person"), r.get("include_photos", False), r.get("defense", 0)) for r in cfg["reports"]]


@pytest.mark.parametrize("text,needle", [
    ("model: !!python/name:os.system world\npeople: p\noutput: o\n", ":1: the tag 'tag:yaml.org,2002:python/name:os.system'"),
    ("model: world\npeople: !custom p\noutput: o\n", ":2: the tag '!custom' is not allowed"),
    ("model: world\n? [a, b]\n: 1\npeople: p\noutput: o\n", ":2: a key must be plain text"),
    ("model: world\npeople: p\noutput: o\nreports:\n  - {? [x]: 1}\n", ":5: a key in reports[0] must be plain text"),
])
def test_yaml_tags_and_complex_keys_are_one_line(tmp_path, text, needle):
    cfg = tmp_path / "audit.yaml"
    cfg.write_text(text)
    assert_one_line_error(run_idia("audit", cfg, "-q"), needle)


FRAME = """\
auditor:
  name: Jane Roe
  organisation: Example Audit Ltd
  on_behalf_of: A data-protection authority
  independence: No ties to the model's provider.
model_info: {provider: Example AI, version: "2.1", obtained_from: "https://example.org/model"}
sign: keys/auditor.p12
tsa: http://127.0.0.1:8080/
"""


def test_the_evidence_keys_parse_and_are_as_strict_as_the_rest(tmp_path):
    cfg = load_config(_write(tmp_path, GOOD.replace("  - kind: mitigation\n", "  - kind: mitigation\n    show_names: true\n")
                             + FRAME))
    assert cfg.auditor == {"name": "Jane Roe", "organisation": "Example Audit Ltd",
                           "on_behalf_of": "A data-protection authority", "independence": "No ties to the model's provider."}
    assert cfg.attack.model_info == {"provider": "Example AI", "version": "2.1", "obtained_from": "https://example.org/model"}
    assert cfg.sign == tmp_path / "keys/auditor.p12" and cfg.tsa == "http://127.0.0.1:8080/"
    assert [r.show_names for r in cfg.reports] == [False, False, True]
    for bad, needle in [("auditor: {name: A, employer: B}\n", "unknown key 'employer' in auditor"),
                        ("auditor: {organisation: B}\n", "missing required key 'name' in auditor"),
                        ("model_info: {provider: A, licence: B}\n", "unknown key 'licence' in model_info"),
                        ("tsa: http://127.0.0.1:1/\n", "tsa timestamps a signature: give sign")]:
        with pytest.raises(InputError, match=needle):
            load_config(_write(tmp_path, GOOD + bad))


def test_an_auditor_file_for_the_command_line(tmp_path):
    from idia.compliance.config import load_auditor
    path = tmp_path / "auditor.yaml"
    path.write_text("name: Jane Roe\non_behalf_of: Example DPA\n")
    who = load_auditor(path)
    assert (who.name, who.on_behalf_of, who.organisation) == ("Jane Roe", "Example DPA", None)
    path.write_text("name: Jane Roe\npassword: x\n")
    with pytest.raises(InputError, match=r"auditor.yaml:2: unknown key 'password' in auditor"):
        load_auditor(path)
