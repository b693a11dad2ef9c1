"""The YAML audit config: parsed strictly, so a typo is an error that names the key and its line, not a default.

Example (paths are relative to the config file):

    model: world                 # architecture name, model folder, JSON config, or 'world'
    checkpoint: null             # weights file, with an architecture name or JSON config
    people: photos/people        # one folder per person
    reference: photos/reference  # known non-members (calibration); optional
    labels: photos/labels.json   # ground truth; optional
    candidates: null             # one name per line; default: audited people + made-up distractors
    distractor_draw: balanced    # made-up distractors: half female, half male first names (or uniform)
    attributes: null             # CSV name,gender,origin: distractors matched to each person listed
    n_candidates: 1000
    prompts: null                # templates file; default: the paper's 21
    max_images: null
    seed: 0
    attack: {tau: null, target_fpr: 0.05}
    utility: photos/shapes       # labelled folders for the defenses' utility check; optional
    defenses:
      - {kind: redact, names: redact.txt, neutral: a person, steps: null}
      - {kind: perturb, names: redact.txt, method: project, strength: 8}
    reports:
      - {kind: audit}
      - {kind: takedown, person: Alice Moreno, include_photos: false}
      - {kind: mitigation, defense: 0, show_names: false}
    auditor:                     # shown on page 1 of every report; optional
      name: Jane Roe
      organisation: Example Audit Ltd
      on_behalf_of: Example Data Protection Authority
      independence: No financial or personal ties to the model's provider.
    model_info: {provider: Example AI, version: "2.1", obtained_from: "https://example.org/model"}  # recorded
    sign: keys/auditor.p12       # sign every report (PAdES); passphrase from IDIA_SIGN_PASSPHRASE or a prompt
    tsa: null                    # an RFC 3161 time-stamping authority's URL, with sign
    output: audit-output
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import yaml

from idia.attack.settings import AttackSettings, check_value, one_of, yaml_keys
from idia.compliance.report.kinds import REPORT_KINDS
from idia.compliance.report.schema import VERIFICATION_RECORD
from idia.defense import base as _defenses
from idia.errors import InputError
from idia.io import read_regular_bytes


def _default(name: str):
    f = AttackSettings.__dataclass_fields__[name]
    return None if f.default is dataclasses.MISSING else f.default

MAX_CONFIG_BYTES = 1 << 20
# Tags a config may carry: YAML's plain data types. Anything else (!!python/name:..., !custom) is refused by name.
PLAIN_TAGS = {f"tag:yaml.org,2002:{t}" for t in ("str", "int", "float", "bool", "null", "map", "seq")}

PATH, STR, INT, FLOAT, BOOL = "path", "str", "int", "float", "bool"

# The attack's keys come from the one settings object (attack.settings): the same names, kinds and checks as the
# command line's options. `attack.tau` and `attack.target_fpr` sit in the `attack:` mapping.
_SETTING_KEYS = {key: (name, STR if kind == "choice" else kind) for key, (name, kind) in yaml_keys().items()}
ATTACK_KEYS = {key.split(".", 1)[1]: (kind, None) for key, (_, kind) in _SETTING_KEYS.items() if key.startswith("attack.")}


def defense_keys() -> dict[str, tuple[str, Any]]:
    """The keys of a `defenses:` entry, {key: (kind, default)}, from the defense registry (defense.base): a new
    defense's options become YAML keys without an edit here. `kind` is the family (redact, perturb); `tower` and
    `method` pick the variant within it. Read when a config is loaded, never at import (the registry imports
    every defense)."""
    return {
        "kind": (STR, ...), "names": (PATH, ...), "tower": (STR, _defenses.towers()[0]),
        "method": (STR, _defenses.variants("perturb")[0]),
        **{key: (opt.kind, opt.default) for key, opt in _defenses.all_options().items()},
    }


def defense_checks() -> dict[str, Callable[[Any], str | None]]:
    """The defenses' own checks of their keys' values, from the registry as `defense_keys`."""
    return {"tower": one_of(_defenses.towers()), "method": one_of(_defenses.variants("perturb")),
            **{key: opt.check for key, opt in _defenses.all_options().items() if opt.check is not None}}


REPORT_KEYS = {"kind": (STR, ...), "person": (STR, None), "include_photos": (BOOL, False), "defense": (INT, 0),
               "show_names": (BOOL, False)}
AUDITOR_KEYS = {"name": (STR, ...), "organisation": (STR, None), "on_behalf_of": (STR, None),
                "independence": (STR, None)}
MODEL_INFO_KEYS = {"provider": (STR, None), "version": (STR, None), "obtained_from": (STR, None)}
# Mappings inside the config, read by `_Reader.mapping` with their own keys.
NESTED = {"attack": lambda: ATTACK_KEYS, "auditor": lambda: AUDITOR_KEYS, "model_info": lambda: MODEL_INFO_KEYS}
TOP_KEYS = {
    **{key: (kind, ... if AttackSettings.__dataclass_fields__[name].metadata["required"] else
             _default(name)) for key, (name, kind) in _SETTING_KEYS.items() if "." not in key},
    "attack": ("attack", {}), "utility": (PATH, None), "defenses": ("defenses", []), "reports": ("reports", []),
    "auditor": ("auditor", None), "model_info": ("model_info", None), "sign": (PATH, None), "tsa": (STR, None),
    "output": (PATH, ...),
}


@dataclass
class DefenseSpec:
    """One entry of `defenses:`: the family, the names, the variant, and the registered defenses' options."""

    kind: str
    names: Path
    tower: str | None = None  # None: the registry's default
    method: str | None = None
    options: dict = field(default_factory=dict)

    @classmethod
    def from_keys(cls, d: dict) -> "DefenseSpec":
        d = dict(d)
        return cls(kind=d.pop("kind"), names=d.pop("names"), tower=d.pop("tower"), method=d.pop("method"), options=d)

    def __getattr__(self, key):  # spec.steps, spec.strength, ...: an option, None when not given
        if key in _defenses.all_options():
            return self.__dict__.get("options", {}).get(key)
        raise AttributeError(key)


@dataclass
class ReportSpec:
    kind: str
    person: str | None = None
    include_photos: bool = False
    defense: int = 0
    show_names: bool = False


@dataclass
class AuditConfig:
    """A YAML audit: the attack's settings, the defenses to verify, the reports to render, where to write."""

    source: Path
    attack: AttackSettings
    output: Path
    utility: Path | None = None
    defenses: list[DefenseSpec] = field(default_factory=list)
    reports: list[ReportSpec] = field(default_factory=list)
    auditor: dict | None = None  # compliance.report.frame.Auditor's fields
    sign: Path | None = None
    tsa: str | None = None


class _Reader:
    """Walks the YAML node tree, so every error can name the line it is about."""

    def __init__(self, path: Path):
        self.path = path
        self.base = path.absolute().parent  # absolute: the audit must find its inputs from any working directory

    def check_tag(self, node) -> None:
        """Only YAML's standard tags: `!!python/name:...` and custom tags are refused, never constructed."""
        tag = getattr(node, "tag", None) or ""
        if tag not in PLAIN_TAGS:
            self.fail(node, f"the tag {tag!r} is not allowed in an audit config (plain values only)")

    def fail(self, node, message: str):
        line = node.start_mark.line + 1 if node is not None else 1
        raise InputError(f"{self.path}:{line}: {message}")

    def scalar(self, node, kind: str, where: str):
        if not isinstance(node, yaml.ScalarNode):
            self.fail(node, f"{where} must be a {kind}, not a {'list' if isinstance(node, yaml.SequenceNode) else 'mapping'}")
        self.check_tag(node)
        try:
            value = yaml.safe_load(yaml.serialize(node))
        except yaml.YAMLError as e:
            self.fail(node, f"{where}: not a plain value ({getattr(e, 'problem', None) or e})")
        if value is None:
            return None
        if kind == PATH:
            if not isinstance(value, str):
                self.fail(node, f"{where} must be a path (text), got {value!r}")
            p = Path(value).expanduser()
            return p if p.is_absolute() else (self.base / p)
        if kind == STR:
            if isinstance(value, bool) or not isinstance(value, (str, int, float)):
                self.fail(node, f"{where} must be text, got {value!r}")
            return str(value)
        if kind == INT:
            if isinstance(value, bool) or not isinstance(value, int):
                self.fail(node, f"{where} must be a whole number, got {value!r}")
            return value
        if kind == FLOAT:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                self.fail(node, f"{where} must be a number, got {value!r}")
            return float(value)
        if kind == BOOL:
            if not isinstance(value, bool):
                self.fail(node, f"{where} must be true or false, got {value!r}")
            return value
        raise AssertionError(kind)

    def mapping(self, node, keys: dict, where: str) -> dict[str, Any]:
        if not isinstance(node, yaml.MappingNode):
            self.fail(node, f"{where} must be a mapping of keys to values")
        self.check_tag(node)
        out: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode):  # a complex key: `? [a, b]`
                self.fail(key_node, f"a key{'' if where == 'config' else ' in ' + where} must be plain text, "
                                    "not a list or mapping")
            self.check_tag(key_node)
            key = key_node.value
            if key not in keys:
                known = ", ".join(sorted(keys))
                self.fail(key_node, f"unknown key '{key}'{'' if where == 'config' else ' in ' + where} (known: {known})")
            if key in out:
                self.fail(key_node, f"key '{key}' appears twice")
            kind = keys[key][0]
            label = key if where == "config" else f"{where}.{key}"
            if kind in NESTED:
                out[key] = _clean(self.mapping(value_node, NESTED[kind](), key), NESTED[kind]()) \
                    if kind != "attack" else self.mapping(value_node, ATTACK_KEYS, "attack")
            elif kind in ("defenses", "reports"):
                out[key] = self.sequence(value_node, kind)
            else:
                out[key] = self.scalar(value_node, kind, label)
                problem = self.check(where, key, out[key])
                if problem:
                    self.fail(value_node, f"{label} {problem}")
            out[f"__line_{key}"] = value_node
        for key, (_, default) in keys.items():
            if default is ... and out.get(key) is None:
                self.fail(node, f"missing required key '{key}'{'' if where == 'config' else ' in ' + where}")
        return out

    @functools.cached_property
    def defense_checks(self) -> dict[str, Callable[[Any], str | None]]:
        return defense_checks()

    def check(self, where: str, key: str, value) -> str | None:
        """The one check of a value: the settings object's for the attack's keys, the defenses' own for theirs."""
        setting = _SETTING_KEYS.get(key if where == "config" else f"{where}.{key}")
        if setting is not None:
            return check_value(setting[0], value)
        if where.startswith("defenses[") and key in self.defense_checks:
            return self.defense_checks[key](value)
        return None

    def sequence(self, node, kind: str) -> list:
        if isinstance(node, yaml.ScalarNode) and yaml.safe_load(yaml.serialize(node)) is None:
            return []
        if not isinstance(node, yaml.SequenceNode):
            self.fail(node, f"{kind} must be a list")
        self.check_tag(node)
        items = []
        for i, item in enumerate(node.value):
            if kind == "defenses":
                keys, families = defense_keys(), _defenses.families()
                d = self.mapping(item, keys, f"defenses[{i}]")
                if d["kind"] not in families:
                    self.fail(d["__line_kind"], f"defenses[{i}].kind must be one of {', '.join(families)}, got '{d['kind']}'")
                items.append(DefenseSpec.from_keys(_clean(d, keys)))
            else:
                r = self.mapping(item, REPORT_KEYS, f"reports[{i}]")
                if r["kind"] not in REPORT_KINDS:
                    kinds = ", ".join(REPORT_KINDS.names())
                    self.fail(r["__line_kind"], f"reports[{i}].kind must be one of {kinds}, got '{r['kind']}'")
                if REPORT_KINDS.get(r["kind"]).about_one_person and not r.get("person"):
                    self.fail(item, f"reports[{i}]: a {r['kind']} report needs 'person'")
                items.append(ReportSpec(**_clean(r, REPORT_KEYS)))
        return items


def _clean(d: dict, keys: dict) -> dict:
    out = {k: v for k, v in d.items() if not k.startswith("__line_")}
    for k, (_, default) in keys.items():
        if k not in out or out[k] is None:
            if default is not ...:
                out[k] = default
    return out


def _resolve_model(model: str, base: Path) -> str:
    """`model:` against the config file's folder: a file or folder there (`my-model`, `models/x.json`,
    `local-dir:my-model`) wins; otherwise a bare word is an open_clip architecture name."""
    if model == "world" or model.startswith("hf-hub:"):
        return model
    prefix = "local-dir:" if model.startswith("local-dir:") else ""
    p = Path(model[len(prefix):]).expanduser()
    if p.is_absolute():
        return model
    here = base / p
    if prefix or here.exists() or "/" in model or model.endswith(".json"):
        return prefix + str(here)
    return model


def load_config(path: str | Path) -> AuditConfig:
    """Parse and validate an audit config; every error names the file, the line and the key."""
    path = Path(path)
    try:
        text = read_regular_bytes(path, MAX_CONFIG_BYTES, what="config file").decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 YAML file") from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise InputError(f"{path}{where}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    reader = _Reader(path)
    if root is None:
        raise InputError(f"{path}: the config is empty")
    top = reader.mapping(root, TOP_KEYS, "config")
    values = _clean(top, TOP_KEYS)
    attack = values.pop("attack") or {}
    attack = {k: v for k, v in attack.items() if not k.startswith("__line_")}
    if attack.get("tau") is not None and attack.get("target_fpr") is not None:
        reader.fail(top["__line_attack"], "attack: give either tau or target_fpr, not both")
    for r in values["reports"]:
        of_defense = REPORT_KINDS.get(r.kind).reads is VERIFICATION_RECORD  # renders a defense's verification
        if of_defense and not values["defenses"]:
            reader.fail(top.get("__line_reports"), f"a {r.kind} report needs at least one entry in defenses")
        if of_defense and not 0 <= r.defense < len(values["defenses"]):
            reader.fail(top.get("__line_reports"), f"reports: defense {r.defense} does not exist")
    if values.get("tsa") is not None and values.get("sign") is None:
        reader.fail(top["__line_tsa"], "tsa timestamps a signature: give sign (a PKCS#12 file) too")
    model_info = values.pop("model_info")
    model = _resolve_model(values.pop("model"), reader.base)
    settings = {_SETTING_KEYS[k][0]: values.pop(k) for k in list(values) if k in _SETTING_KEYS}
    if model_info:
        settings["model_info"] = {k: v for k, v in model_info.items() if v is not None}
    settings.update({_SETTING_KEYS[f"attack.{k}"][0]: v for k, v in attack.items()})
    if settings.get("checkpoint") is not None:
        settings["checkpoint"] = str(settings["checkpoint"])
    return AuditConfig(source=path, attack=AttackSettings(model=model, **settings), **values)


def load_auditor(path: str | Path):
    """The auditor block from a YAML file (`idia report --auditor FILE`): the keys of `auditor:` in an audit's
    config (name, organisation, on_behalf_of, independence), read as strictly."""
    from idia.compliance.report.frame import Auditor
    path = Path(path)
    try:
        text = read_regular_bytes(path, MAX_CONFIG_BYTES, what="auditor file").decode("utf-8")
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except UnicodeDecodeError:
        raise InputError(f"{path}: not a UTF-8 YAML file") from None
    except yaml.YAMLError as e:
        raise InputError(f"{path}: not valid YAML ({getattr(e, 'problem', None) or e})") from None
    if root is None:
        raise InputError(f"{path}: the auditor file is empty")
    return Auditor.from_dict(_clean(_Reader(path).mapping(root, AUDITOR_KEYS, "auditor"), AUDITOR_KEYS))
