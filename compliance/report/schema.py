"""Reading a record: its bytes, its kind and schema version, and the types of the fields the reports read.

A record a report cannot render is refused before any template runs, in one line that names the field
(`the record lacks persons[3].score`, `persons[0].votes must be a list`); so is a record that does not hold
together (`attack.record.check` for results.json, `defense.record.check_verification_record` for
verification.json: verdicts that do not follow from the statistics and rule, counts that do not follow from the
persons, linked files that are not the ones recorded). Every reader goes through `check_record`.

The attack record's checks are derived from its dataclasses (`attack.record.results`: AttackResult, PersonResult,
PromptVote, ImageAnswer and the typed dicts beside them), so a field added there is checked here without a second
edit: str is text, int a whole number, float a number, bool true/false, `X | None` either, `list[X]` a list of X,
`tuple[X, Y]` a list of exactly those, a dataclass or typed dict an object with its fields, `dict` any object. A
field whose default is None may be absent (absent reads as null); every other field must be there. Inside the
blocks the record types only as `dict` (rule, candidates, calibration, the manifest), `INSIDE_BLOCKS` lists what
the templates read.

The verification record is `defense.verify`'s (it owns the kind and the schema version it writes); what the
mitigation report needs of it (the versions it renders, the blocks it reads) is said here.
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, Callable

from idia.attack.record.results import KIND_ATTACK, SCHEMA_VERSION, AttackResult
from idia.defense.record import KIND_VERIFICATION
from idia.errors import InputError
from idia.io import read_regular_bytes


def load_record(path: str | Path) -> tuple[dict, bytes]:
    """The JSON record and its exact bytes (the report's document ID is their SHA-256)."""
    path = Path(path)
    raw = read_regular_bytes(path, what="JSON record", missing="no such file")
    try:
        data = json.loads(raw.decode("utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a JSON record ({e})") from None
    if not isinstance(data, dict):
        raise InputError(f"{path}: not an idia record (a JSON object was expected)")
    return data, raw


# --- the kinds of record a report renders -------------------------------------------------------------------

@dataclass(frozen=True)
class RecordKind:
    """A record that reports render: what writes it, its `kind` field (read from the module that writes it, when
    first compared), and the check of its fields."""

    made_by: str
    kind_of: Callable[[], str]
    check: Callable[[dict, Path | None], None]  # (record, the folder it lies in, or None when only in memory)

    @property
    def kind(self) -> str:
        return self.kind_of()


def check_record(data: dict, reads: RecordKind, report: str, folder: str | Path | None = None) -> None:
    """That `data` is the record (`reads`) a `report` report renders, in a schema version it knows, with the
    fields its templates read, of the types they need, and that it holds together (with the files it links,
    when `folder`, where it lies, is given)."""
    found = data.get("kind")
    if found != reads.kind:
        other = next((r for r in RECORD_KINDS if r.kind == found), None)
        what = f"is {other.made_by}" if other else f"is not an idia record (kind={found!r})"
        raise InputError(f"{what}; a {report} report needs {reads.made_by}")
    reads.check(data, Path(folder) if folder is not None else None)


def _check_attack(data: dict, folder: Path | None = None) -> None:
    if data.get("schema_version") == SCHEMA_VERSION:  # another version is named as such by from_dict
        check_fields(data, attack_fields(), "")
    # Schema version and top-level field names (raises InputError); the people's field types were checked just
    # above, without building 10^5 typed objects only to check them.
    try:
        AttackResult.from_dict({**data, "persons": [], "reference": []})
    except TypeError as e:
        raise InputError(f"not a valid attack record ({e})") from None
    from idia.attack.record.check import check_attack_record
    check_attack_record(data, folder)


def typed_person(data: dict, person: dict):
    """One person as the record's dataclasses build it: every field there, and no other (a TypeError names a
    field the record should not have)."""
    return AttackResult.from_dict({**data, "persons": [person], "reference": []}).persons[0]


# The verification record's versions the mitigation report renders (3 adds the decision boundary, non-members,
# utility intervals, probes not run and the verdict; 2 adds photos, probes and relearning, each
# may be null; 1 renders without them), and the blocks it reads.
VERIFICATION_SCHEMAS = (1, 2, 3)
VERIFICATION_KEYS = ("manifest", "defense", "redacted", "neighbours", "collateral", "summary")


def _check_verification(data: dict, folder: Path | None = None) -> None:
    if data.get("schema_version") not in VERIFICATION_SCHEMAS:
        raise InputError(f"verification schema version {data.get('schema_version')!r} is not one of "
                         f"{', '.join(map(str, VERIFICATION_SCHEMAS))}")
    keys = VERIFICATION_KEYS + (("nonmembers",) if data["schema_version"] >= 3 else ())
    missing = [k for k in keys if k not in data]
    if missing:
        raise InputError(f"the verification record lacks {', '.join(missing)}")
    from idia.defense.record import check_verification_record
    check_verification_record(data, folder, read=_read_linked_attack)


def _read_linked_attack(path: Path) -> dict:
    """An attack record a verification links (before/ or after/results.json), read and checked like any other."""
    data, _ = load_record(path)
    try:
        check_record(data, ATTACK_RECORD, "mitigation", path.parent)
    except InputError as e:
        raise InputError(f"{path}: {e}") from None
    return data


ATTACK_RECORD = RecordKind("a results.json from `idia attack`", lambda: KIND_ATTACK, _check_attack)
VERIFICATION_RECORD = RecordKind("a verification.json from `idia verify`", lambda: KIND_VERIFICATION, _check_verification)
RECORD_KINDS = (ATTACK_RECORD, VERIFICATION_RECORD)


# --- field types ---------------------------------------------------------------------------------------------

TEXT, WHOLE, NUMBER, TRUTH, NULL, ANYTHING = "text", "whole number", "number", "true/false", "null", "anything"
_FITS = {NUMBER: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
         WHOLE: lambda v: isinstance(v, int) and not isinstance(v, bool),
         TEXT: lambda v: isinstance(v, str), TRUTH: lambda v: isinstance(v, bool), NULL: lambda v: v is None,
         ANYTHING: lambda v: True}
_SCALARS = {str: TEXT, int: WHOLE, float: NUMBER, bool: TRUTH, type(None): NULL}


@dataclass(frozen=True)
class Obj:
    """An object with these fields (name → type); the `optional` ones may be absent."""

    fields: dict = dataclasses.field(default_factory=dict)
    optional: frozenset = frozenset()


@dataclass(frozen=True)
class ListOf:
    item: object = ANYTHING


@dataclass(frozen=True)
class Row:
    """A list of exactly these, in order (a `tuple[...]` in the dataclass: `[name, similarity]`)."""

    items: tuple


@dataclass(frozen=True)
class AnyOf:
    options: tuple


def spec_of(hint) -> object:
    """The check of a field from its type hint (see the module's docstring)."""
    if hint is Any:
        return ANYTHING
    if hint in _SCALARS:
        return _SCALARS[hint]
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin in (typing.Union, types.UnionType):
        return AnyOf(tuple(spec_of(a) for a in args))
    if hint is list or origin is list:
        return ListOf(spec_of(args[0]) if args else ANYTHING)
    if origin is tuple:
        return Row(tuple(spec_of(a) for a in args))
    if hint is dict or origin is dict:
        return Obj()
    if dataclasses.is_dataclass(hint):
        hints = typing.get_type_hints(hint)
        fields = dataclasses.fields(hint)
        return Obj({f.name: spec_of(hints[f.name]) for f in fields},
                   frozenset(f.name for f in fields if f.default is None))
    if typing.is_typeddict(hint):
        return Obj({k: spec_of(t) for k, t in typing.get_type_hints(hint).items()}, hint.__optional_keys__)
    raise TypeError(f"a record field's type {hint!r} has no check; add one to spec_of")


# What the templates read inside the blocks the attack record types only as `dict`.
INSIDE_BLOCKS = {
    "manifest": Obj({"inputs": Obj()}),
    "candidates": Obj({"n": WHOLE}),
    "rule": Obj({"decided_by": TEXT, "tau": AnyOf((WHOLE, NULL)), "n_prompts": WHOLE, "n_candidates": WHOLE,
                 "explanation": TEXT, "p_value_method": TEXT}),
    "calibration": Obj({"threshold": AnyOf((NUMBER, NULL)), "null_scores": ListOf(NUMBER)}),
    "occurrences": Obj({"n_listed": WHOLE, "n_not_listed": WHOLE,
                        "bins": ListOf(Obj({"label": TEXT, "n": WHOLE, "identified": WHOLE,
                                            "rate": AnyOf((NUMBER, NULL)), "ci95": Row((NUMBER, NUMBER))}))}),
}


def _with_inside(spec, inside: Obj):
    """`spec` (an object, or an object or null) with the fields `inside` names added to its object."""
    if isinstance(spec, AnyOf):
        return AnyOf(tuple(_with_inside(s, inside) if isinstance(s, Obj) else s for s in spec.options))
    return Obj({**spec.fields, **inside.fields}, spec.optional)


@cache
def attack_fields() -> Obj:
    """The attack record's check: derived from AttackResult, with what the templates read inside its blocks."""
    top = spec_of(AttackResult)
    fields = {k: _with_inside(s, INSIDE_BLOCKS[k]) if k in INSIDE_BLOCKS else s for k, s in top.fields.items()}
    return Obj(fields, top.optional)


def _describe(spec) -> str:
    if isinstance(spec, AnyOf):
        return " or ".join(_describe(s) for s in spec.options)
    if isinstance(spec, Obj):
        return "an object"
    if isinstance(spec, ListOf):
        return "a list"
    if isinstance(spec, Row):
        return f"a list of {len(spec.items)} ({', '.join(_describe(s) for s in spec.items)})"
    return spec


def _fits(value, spec) -> bool:
    if isinstance(spec, AnyOf):
        return any(_fits(value, s) for s in spec.options)
    if isinstance(spec, Obj):
        return isinstance(value, dict)
    if isinstance(spec, ListOf):
        return isinstance(value, list)
    if isinstance(spec, Row):
        return isinstance(value, list) and len(value) == len(spec.items)
    return _FITS[spec](value)


def check_fields(value, spec, where: str) -> None:
    """That `value` has the shape `spec` describes, else an InputError naming the first field that does not."""
    if not _fits(value, spec):
        raise InputError(f"the record's {where or 'top level'} must be {_describe(spec)}, got {_short(value)}")
    if isinstance(spec, AnyOf):
        spec = next(s for s in spec.options if _fits(value, s))
    if isinstance(spec, Obj):
        for key, sub in spec.fields.items():
            if key in value:
                check_fields(value[key], sub, f"{where}.{key}" if where else key)
            elif key not in spec.optional:
                raise InputError(f"the record lacks {where + '.' if where else ''}{key}")
    elif isinstance(spec, ListOf) and spec.item != ANYTHING:
        for i, item in enumerate(value):
            check_fields(item, spec.item, f"{where}[{i}]")
    elif isinstance(spec, Row):
        for i, (item, sub) in enumerate(zip(value, spec.items)):
            check_fields(item, sub, f"{where}[{i}]")


def _short(value) -> str:
    text = json.dumps(value, ensure_ascii=False)
    return text if len(text) <= 40 else text[:37] + "..."
