"""The takedown report: one person, for a lawyer (the verdict, the model's answers, the statistic in plain
words, the limits, and how to reproduce it). Photos only on request (`--include-photos`).

Its PDF carries that person's record only (`extracts.person_record`): no other person's name or result, on the
pages or in the attachment; where the model answered with another audited person's name, the answer reads
`extracts.WITHHELD`. The whole record's SHA-256 (the document ID) links the two."""

from __future__ import annotations

import shlex

from idia.compliance.report import extracts
from idia.compliance.report.attachments import Attachment
from idia.compliance.report.facts import Fact
from idia.compliance.report.frame import model_identity, threat_model
from idia.compliance.report.kinds import ReportKind, Request, register
from idia.compliance.report.people import (
    drawn_for,
    find_person,
    first_answer,
    person_detail,
    person_summary,
    rule_in_words,
)
from idia.compliance.report.photos import thumbnail
from idia.compliance.report.schema import ATTACK_RECORD, typed_person
from idia.compliance.report.wording import pct, pval

NAME = "takedown"
RECORD_NAME = "person-record.json"


def _extract(data: dict, request: Request) -> dict:
    found = find_person(data, request.person)
    typed_person(data, found)  # this person's fields, all of them, and no others
    return extracts.person_record(data, found)


def carry(data: dict, request: Request) -> tuple[list[Attachment], dict]:
    one = _extract(data, request)
    wrapped = extracts.wrap(NAME, request.raw, request.source_name, data["kind"], extracts.TAKEDOWN_OMITTED, one)
    return [Attachment(RECORD_NAME, extracts.serialised(wrapped),
                       "this person's record only (the manifest, the rule, the candidates' hash and their complete "
                       "result); its source.sha256 is the document ID, the SHA-256 of the whole record",
                       relationship="Source")], one


def facts(record: dict) -> list[Fact]:
    """Page 1's figures: the verdict, the score, the p-value and, when measured, the false-positive rate."""
    p, rule, cal = record["persons"][0], record["rule"], record.get("calibration")
    out = [Fact("verdict", "Identified" if p["member"] else "Not identified", "the verdict of this test"),
           Fact("score", f"{p['score']} of {rule['n_prompts']}", "phrasings answered with the person's real name"),
           Fact("p_value", pval(p["p_value"]), "p-value: how often a model that never saw the person would do "
                                               "at least as well")]
    if cal:
        out.append(Fact("reference_fpr", pct(cal["reference_fpr"]),
                        f"of {cal['n_reference']} reference people (known never seen) wrongly identified"))
    return out


def build(data: dict, request: Request) -> tuple[dict, list]:
    one = _extract(data, request)  # the pages show what the attachment carries: no other person's name
    p = person_detail(one["persons"][0])
    photos = [thumbnail(im["file"], im["sha256"]) for im in p["images"]] if request.include_photos else []
    report_cmd = shlex.join(["idia", "report", request.source_name, "--kind", NAME, "--person", p["name"]])
    return {"person": p, "photos": photos, "include_photos": request.include_photos, "report_command": report_cmd,
            "drawn": drawn_for(data, p), "rule_words": rule_in_words(one["rule"]), "first_answer": first_answer(p),
            "threat": threat_model(one, [person_summary(one["persons"][0])], run_people=len(data["persons"])),
            "model_id": model_identity(data["manifest"], data["model"])}, []


register(ReportKind(NAME, "Takedown evidence", ATTACK_RECORD, build, carry, facts, about_one_person=True))
