"""The record a report's PDF carries when it cannot carry the whole record: an extract, linked to the whole by its
SHA-256 (which is the report's document ID).

  takedown      one person's record only: the manifest (this person's photos, and the SHA-256 of the complete
                photo list, so a rerun can check the others without naming them), the rule, the candidates'
                hash and the person's complete result. Other audited people's names never appear: where the
                model answered with one, the answer reads WITHHELD.
  slim          an audit too large to carry whole: the record without the raw answers (each person's votes and
                per-photo answers, which persons.csv and scores.csv summarise and hold) and without the photo
                list (photos.csv, attached, holds it; its SHA-256 is recorded here).
  pseudonymous  a mitigation record with every person's name replaced by a pseudonymous ID (redacted-1,
                namesake-1, person-1, other-1), in every field, file paths included.

An extract is `{"kind": EXTRACT_KIND, "schema_version", "report", "source": {"name", "sha256", "kind"},
"omitted": [...], "record": {...}}`: `record` has the source's own layout, so the report kinds read it as they
read the whole.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re

EXTRACT_KIND = "idia-record-extract"
EXTRACT_SCHEMA = 1
WITHHELD = "[another audited person: name withheld]"
PHOTO_COLUMNS = ("person", "file", "sha256")


def wrap(report: str, source_raw: bytes, source_name: str, source_kind: str, omitted: list[str],
         record: dict) -> dict:
    return {"kind": EXTRACT_KIND, "schema_version": EXTRACT_SCHEMA, "report": report,
            "source": {"name": source_name, "sha256": hashlib.sha256(source_raw).hexdigest(), "kind": source_kind},
            "omitted": omitted, "record": record}


def serialised(data: dict) -> bytes:
    """A record as idia writes it (indented UTF-8 JSON and a newline)."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def unwrap(record: dict) -> tuple[dict, str | None]:
    """The record inside an extract and the whole record's SHA-256; a whole record and None otherwise."""
    if isinstance(record, dict) and record.get("kind") == EXTRACT_KIND:
        return record["record"], record["source"]["sha256"]
    return record, None


def photo_rows(images: list[dict]):
    return ((im["person"], im["file"], im["sha256"]) for im in images)


def photos_digest(photos_csv: bytes) -> str:
    return hashlib.sha256(photos_csv).hexdigest()


# --- takedown -------------------------------------------------------------------------------------------------

def withhold(value, others: set[str]):
    """A copy of `value` (a person's result, a namesake group) with every string that is another audited person's
    name replaced by WITHHELD: their votes, top answers, strongest competitor, near-identical names."""
    if isinstance(value, dict):
        return {k: withhold(v, others) for k, v in value.items()}
    if isinstance(value, list):
        return [withhold(v, others) for v in value]
    return WITHHELD if isinstance(value, str) and value in others else value


def own_namesake_groups(data: dict, name: str, others: set[str]) -> list[dict]:
    """The near-identical-name groups the person belongs to, other audited people's names withheld."""
    return [withhold(g, others) for g in data.get("namesakes") or [] if name in g.get("flagged", [])]


def photo_set_digest(pairs) -> str:
    """The SHA-256 of a set of photos as (person, photo SHA-256) pairs, wherever the files lie: sorted, one
    `person<TAB>sha256` line each."""
    return hashlib.sha256("".join(f"{p}\t{h}\n" for p, h in sorted(pairs)).encode("utf-8")).hexdigest()


def person_distractors(data: dict, person: dict) -> dict | None:
    """The distractor block with only the person's own group (the other groups count other people)."""
    distractors = copy.deepcopy(data.get("distractors"))
    if distractors and distractors.get("groups"):
        group = person.get("distractor_group")
        distractors["groups"] = [g for g in distractors["groups"] if g.get("id") == group] or distractors["groups"][:1]
    return distractors


def person_record(data: dict, person: dict) -> dict:
    """The attack record cut down to one person (see the module's docstring)."""
    everyone = {p["name"] for p in data["persons"]} | {p["name"] for p in data.get("reference") or []}
    manifest = copy.deepcopy(data["manifest"])
    inputs = manifest["inputs"]
    images = inputs.get("images", [])
    inputs["images"] = [im for im in images if im["person"] == person["name"]]
    inputs["all_images"] = {"n": len(images),
                            "pairs_sha256": photo_set_digest((im["person"], im["sha256"]) for im in images),
                            "note": "the SHA-256 of every photo the audit read as sorted 'person<TAB>sha256' lines; "
                                    "the list names other people and is not carried"}
    candidates = {k: v for k, v in data["candidates"].items() if k != "added_true_names"}
    out = {k: v for k, v in data.items() if k not in ("persons", "reference", "not_auditable", "warnings")}
    others = everyone - {person["name"]}
    out.update(manifest=manifest, candidates=candidates, distractors=person_distractors(data, person),
               persons=[withhold(person, others)], reference=[], not_auditable=[], warnings=[])
    if "namesakes" in data:
        out["namesakes"] = own_namesake_groups(data, person["name"], others)
    return out


TAKEDOWN_OMITTED = ["every other audited and reference person's result", "the photo list of other people "
                    "(manifest.inputs.all_images holds its SHA-256)", "the attack's notices (they may name others)",
                    "the names of the people who were not auditable", "answers naming another audited person "
                    f"read {WITHHELD!r}"]


# --- slim (an audit too large to carry whole) ----------------------------------------------------------------

RAW_ANSWERS = ("votes", "images")


def slim_record(data: dict, photos_csv_sha256: str) -> dict:
    """The record without the raw answers and the photo list (see the module's docstring)."""
    out = dict(data)
    out["persons"] = [{k: v for k, v in p.items() if k not in RAW_ANSWERS} for p in data["persons"]]
    out["reference"] = [{k: v for k, v in p.items() if k not in RAW_ANSWERS} for p in data.get("reference") or []]
    manifest = dict(data["manifest"])
    manifest["inputs"] = {**data["manifest"]["inputs"], "images": {"in": "photos.csv", "sha256": photos_csv_sha256}}
    out["manifest"] = manifest
    return out


SLIM_OMITTED = ["each person's votes and per-photo answers (persons.csv summarises them; the attack's scores.csv, "
                "whose SHA-256 the manifest holds, has every answer)",
                "the photo list: photos.csv, attached, whose SHA-256 is manifest.inputs.images.sha256"]


# --- pseudonymous (a mitigation) -----------------------------------------------------------------------------

GROUP_PREFIX = (("redacted", "redacted"), ("neighbours", "namesake"), ("collateral", "person"))


def pseudonyms(data: dict) -> dict[str, str]:
    """Name → ID: the redacted people, their namesakes and everyone else in the record's order, then any other
    name the record holds (photos of people in no group), `other-N`."""
    ids: dict[str, str] = {}
    for key, prefix in GROUP_PREFIX:
        for i, row in enumerate(data.get(key) or [], 1):
            ids.setdefault(row["name"], f"{prefix}-{i}")
    inputs = data.get("manifest", {}).get("inputs", {})
    more = [n for n in ((inputs.get("names") or {}).get("names") or []) if isinstance(n, str)]
    more += [im["person"] for im in (inputs.get("images") or []) if isinstance(im, dict) and "person" in im]
    for block in ((data.get("photos") or {}).get("unlearn") or {}, (data.get("photos") or {}).get("verify") or {}):
        more += list(block)
    n = 0
    for name in more:
        if name not in ids:
            n += 1
            ids[name] = f"other-{n}"
    return ids


def replace_names(value, ids: dict[str, str]):
    """`value` (JSON) with every name in `ids` replaced, in strings (whole or inside, as in a file path) and in
    keys. Longest names first, so "Anne Marie Roux" is not half-replaced as "Anne Marie"."""
    if not ids:
        return value
    pattern = re.compile("|".join(re.escape(n) for n in sorted(ids, key=len, reverse=True)))

    def walk(v):
        if isinstance(v, str):
            return ids[v] if v in ids else pattern.sub(lambda m: ids[m.group(0)], v)
        if isinstance(v, list):
            return [walk(x) for x in v]
        if isinstance(v, dict):
            return {walk(k): walk(x) for k, x in v.items()}
        return v
    return walk(value)


PSEUDONYMOUS_OMITTED = ["every person's name: each is a pseudonymous ID (redacted-N, namesake-N, person-N, "
                        "other-N), in every field and file path; `idia report --show-names` renders the names"]
