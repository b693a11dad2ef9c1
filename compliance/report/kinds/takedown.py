"""The takedown report: one person, for a lawyer (the verdict, the model's answers, the statistic in plain
words, the limits, and how to reproduce it). Photos only on request (`--include-photos`)."""

from __future__ import annotations

import shlex

from idia.compliance.report.kinds import ReportKind, Request, register
from idia.compliance.report.people import drawn_for, find_person, first_answer, person_detail, rule_in_words
from idia.compliance.report.photos import thumbnail
from idia.compliance.report.schema import ATTACK_RECORD, typed_person

NAME = "takedown"


def build(data: dict, request: Request) -> tuple[dict, list]:
    found = find_person(data, request.person)
    typed_person(data, found)  # this person's fields, all of them, and no others
    p = person_detail(found)
    photos = [thumbnail(im["file"], im["sha256"]) for im in p["images"]] if request.include_photos else []
    report_cmd = shlex.join(["idia", "report", request.source_name, "--kind", NAME, "--person", p["name"]])
    return {"person": p, "photos": photos, "include_photos": request.include_photos, "report_command": report_cmd,
            "drawn": drawn_for(data, p), "rule_words": rule_in_words(data["rule"]), "first_answer": first_answer(p)}, []


register(ReportKind(NAME, "Takedown evidence", ATTACK_RECORD, build, about_one_person=True))
