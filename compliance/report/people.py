"""The per-person record, read here and nowhere else.

`person_summary` and `person_detail` are the only readers of a person's entry in results.json; the templates and
persons.csv read the keys they return. A new per-person layout in the record is a local edit here. Finding a
person indexes the names once, so a takedown among 10^5 people is one pass.
"""

from __future__ import annotations

import difflib

from idia.errors import InputError
from idia.names import name_key, normalize_name

# The audit's complete table, one row per audited person, in the record's order (persons.csv).
PERSON_COLUMNS = ("name", "n_images", "score", "identified", "p_value", "mean_log_prob", "mean_rank", "mean_prob",
                  "label")


def person_summary(p: dict) -> dict:
    """The per-person numbers every report shows (templates and persons.csv read these keys, not the record's)."""
    return {"name": p["name"], "n_images": p["n_images"], "score": p["score"], "member": p["member"],
            "p_value": p["p_value"], "mean_log_prob": p["mean_log_prob"], "mean_rank": p["mean_rank"],
            "mean_prob": p["mean_prob"], "label": p.get("label"), "evidence": p.get("evidence"),
            "distractor_group": p.get("distractor_group")}


def person_detail(p: dict) -> dict:
    """One person in full, for a takedown: the summary, each phrasing's vote and each photo's answer."""
    return {**person_summary(p),
            "votes": [{"template": v["template"], "vote": v["vote"], "images_agreeing": v["images_agreeing"],
                       "tie": v["tie"], "is_true_name": v["is_true_name"]} for v in p["votes"]],
            "images": [{"file": im["file"], "sha256": im["sha256"], "true_rank": im["true_rank"],
                        "first_choice": im["top"][0][0] if im["top"] and not im.get("top_tie") else None,
                        "first_choice_tie": bool(im.get("top_tie"))} for im in p["images"]],
            "skipped": p.get("skipped") or []}


def person_row(s: dict) -> tuple:
    """A summary as a persons.csv row (PERSON_COLUMNS)."""
    label = "" if s["label"] is None else ("member" if s["label"] else "non-member")
    return (s["name"], s["n_images"], s["score"], "yes" if s["member"] else "no", float(s["p_value"]),
            float(s["mean_log_prob"]), float(s["mean_rank"]), float(s["mean_prob"]), label)


def find_person(data: dict, person: str | None) -> dict:
    """The record's entry for `person`: exact, then NFC-normalised, then the one case-insensitive match.

    The names are indexed once (a dict), so finding one person among 10^5 costs one pass, not one per try."""
    if not person:
        raise InputError("a takedown report is about one person: give --person NAME")
    people = data["persons"]
    index: dict[str, dict] = {}
    for p in people:
        index.setdefault(p["name"], p)
    for wanted in (person, normalize_name(person)):
        if wanted in index:
            return index[wanted]
    folded = name_key(person)
    same = [p for p in people if name_key(p["name"]) == folded]
    if len(same) == 1:
        return same[0]
    close = difflib.get_close_matches(person, list(index), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise InputError(f"no audited person named {person!r} among the {len(people)} in the record{hint}")


def distractor_groups(data: dict) -> list[dict]:
    """Every list of distractors the record describes: its `groups`, or (a record from before groups) the one
    block; none without a `distractors` block."""
    block = data.get("distractors")
    return (block.get("groups") or [block]) if block else []


def drawn_for(data: dict, p: dict) -> dict | None:
    """How this person's distractors were drawn: their group's block (the first group's, as the record's top
    level holds, when the record names none)."""
    groups = distractor_groups(data)
    return next((g for g in groups if g.get("id") == p["distractor_group"]), groups[0] if groups else None)
