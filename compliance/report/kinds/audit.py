"""The audit report: every audited person, for a data-protection officer.

Its pages stay bounded at any number of people: the summary, the findings, the figures (PNG, binned with numpy)
and a table of everyone when at most `PAGE_PEOPLE` were audited, else of the identified people with the
strongest evidence (a heap, not a sort) and a sentence counting the rest. Photo hashes are never printed: they
are in photos.csv. The complete tables ride inside the PDF as attachments: persons.csv (`people.PERSON_COLUMNS`),
photos.csv (person, file, SHA-256 of every photo read) and the record itself, or beyond the record limit the
record without the raw answers (`extracts.slim_record`), each with its SHA-256 printed on the cover and in the
last section. The only arithmetic is tallying verdicts the attached table lists.
"""

from __future__ import annotations

import heapq

from idia.compliance.report import extracts, plots
from idia.compliance.report.attachments import Attachment, csv_bytes, size_text
from idia.compliance.report.facts import Fact
from idia.compliance.report.frame import model_identity, threat_model
from idia.compliance.report.kinds import ReportKind, Request, register
from idia.compliance.report.people import (
    PERSON_COLUMNS,
    distractor_groups,
    first_answer,
    person_row,
    person_summary,
    rule_in_words,
)
from idia.compliance.report.schema import ATTACK_RECORD
from idia.compliance.report.wording import fixed, pct

# An audit's pages list at most this many people; beyond that the pages name the strongest evidence and the
# complete tables travel as attachments. 200 rows are about 4 pages.
PAGE_PEOPLE = 200
PHOTO_COLUMNS = extracts.PHOTO_COLUMNS


def _by_evidence(s: dict) -> tuple:
    """Strongest evidence first: smallest p-value, then highest continuous score, then name (a total order)."""
    return (float(s["p_value"]), -float(s["mean_log_prob"]), s["name"])


def people_on_pages(summaries: list[dict], cap: int) -> list[dict]:
    """Everyone, in the record's order, when they fit; else the `cap` identified people with the strongest
    evidence (a heap: one pass, not a sort of everyone)."""
    if len(summaries) <= cap:
        return summaries
    return heapq.nsmallest(cap, (s for s in summaries if s["member"]), key=_by_evidence)


def persons_csv(summaries) -> bytes:
    return csv_bytes(PERSON_COLUMNS, map(person_row, summaries))


def photos_csv(images: list[dict]) -> bytes:
    return csv_bytes(PHOTO_COLUMNS, extracts.photo_rows(images))


def carry(data: dict, request: Request) -> tuple[list[Attachment], dict]:
    """persons.csv, photos.csv and the record (or, beyond the record limit, the record without the raw answers)."""
    photos = photos_csv(data["manifest"]["inputs"].get("images", []))
    files = [Attachment("persons.csv", persons_csv(person_summary(p) for p in data["persons"]),
                        "every audited person: photos, score, verdict, p-value, continuous score, rank, truth"),
             Attachment("photos.csv", photos, "every photo the attack read, with its SHA-256")]
    raw, name, limit = request.raw, request.source_name, request.record_limit
    if len(raw) <= limit:
        files.append(Attachment(name, raw, "the record this report renders (its SHA-256 is the document ID)",
                                relationship="Source"))
        return files, data
    slim = extracts.slim_record(data, extracts.photos_digest(photos))
    wrapped = extracts.wrap("audit", raw, name, data["kind"], extracts.SLIM_OMITTED, slim)
    body = extracts.serialised(wrapped)
    files.append(Attachment(f"{name.rsplit('.', 1)[0]}-without-raw-answers.json", body,
                            f"{name} ({size_text(len(raw))}) is over the {size_text(limit)} attachment limit: this is "
                            "the record without the raw answers; its source.sha256 is the document ID",
                            relationship="Source"))
    return files, slim


def facts(record: dict) -> list[Fact]:
    """Page 1's figures: who was identified, the measured false-positive rate, the accuracy against truth."""
    persons = record["persons"]
    n, identified = len(persons), sum(1 for p in persons if p["member"])
    fdr = record.get("fdr")
    false_alarms = (f" (about {fixed(fdr['expected_false_discoveries'], 1)} expected to be false alarms)"
                    if fdr and fdr.get("flagged") else "")
    out = [Fact("identified", f"{identified} of {n}",
                f"audited people flagged: the model links their name to their photos{false_alarms}")]
    cal, m = record.get("calibration"), record.get("metrics")
    if cal:
        out.append(Fact("reference_fpr", pct(cal["reference_fpr"]),
                        f"of {cal['n_reference']} reference people (known never seen) wrongly identified"))
    else:
        out.append(Fact("reference_fpr", "not measured", "false-positive rate (no reference people)"))
    if m and m.get("roc"):
        out.append(Fact("auc", fixed(m["roc"]["auc"], 3), f"ROC AUC against known truth ({m['n_labelled']} people)"))
    elif m:
        out.append(Fact("accuracy", pct(m["accuracy"]), f"of verdicts right against known truth "
                                                         f"({m['n_labelled']} people)"))
    else:
        out.append(Fact("accuracy", "unknown", "accuracy (no ground truth supplied)"))
    return out


def _figures(data: dict, summaries: list[dict]) -> dict:
    calibration = data.get("calibration")
    continuous = data["rule"]["decided_by"] == "calibrated-continuous"
    distribution = plots.score_distribution(
        [s["mean_log_prob"] for s in summaries],
        calibration["null_scores"] if calibration else None,
        calibration["threshold"] if calibration and continuous else None)
    roc = (data.get("metrics") or {}).get("roc")
    roc_plot = plots.roc_curve(roc["fpr"], roc["tpr"], roc["auc"]) if roc else None
    occ = data.get("occurrences")
    occurrence_plot = plots.occurrences(occ["bins"], occ.get("not_listed")) if occ and occ["bins"] else None
    return {"distribution_plot": distribution, "roc_plot": roc_plot, "occurrence_plot": occurrence_plot,
            "not_plotted": sum(1 for s in summaries if s["mean_log_prob"] <= plots.NOT_FINITE)}


def _reference_photos(data: dict, images: list[dict]) -> int:
    reference = {r["name"] for r in data["reference"]}
    return sum(1 for im in images if im["person"] in reference)


def build(data: dict, request: Request) -> tuple[dict, list[Attachment]]:
    summaries = [person_summary(p) for p in data["persons"]]
    for s in summaries:
        s["first_answer"] = first_answer(s)
    images = data["manifest"]["inputs"].get("images", [])
    context = {
        "persons": summaries,
        # Tallies of the verdicts and labels the attached table lists (not new statistics).
        "n_identified": sum(1 for s in summaries if s["member"]),
        "n_labelled": sum(1 for s in summaries if s["label"] is not None),
        "listed": people_on_pages(summaries, PAGE_PEOPLE), "lists_everyone": len(summaries) <= PAGE_PEOPLE,
        "page_people": PAGE_PEOPLE,
        **_figures(data, summaries),
        "images": images,
        "n_reference_photos": _reference_photos(data, images),
        "distractor_groups": distractor_groups(data),
        "threat": threat_model(data, summaries),
        "model_id": model_identity(data["manifest"], data["model"]),
        "rule_words": rule_in_words(data["rule"]),
    }
    return context, []


register(ReportKind("audit", "GDPR audit of a CLIP model", ATTACK_RECORD, build, carry, facts))
