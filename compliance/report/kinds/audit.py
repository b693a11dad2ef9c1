"""The audit report: every audited person, for a data-protection officer.

Its pages stay bounded at any number of people: the summary, the findings, the figures (PNG, binned with numpy)
and a table of everyone when at most `PAGE_PEOPLE` were audited, else of the identified people with the
strongest evidence (a heap, not a sort) and a sentence counting the rest; photo hashes are listed up to
`PAGE_PHOTOS`. The complete tables ride inside the PDF as attachments: persons.csv (`people.PERSON_COLUMNS`),
photos.csv (person, file, SHA-256 of every photo read) and the record itself (up to the record limit), each with
its SHA-256 printed on the cover and in the last section. The only arithmetic is tallying verdicts the attached
table lists.
"""

from __future__ import annotations

import heapq

from idia.compliance.report import plots
from idia.compliance.report.attachments import Attachment, csv_bytes, size_text
from idia.compliance.report.kinds import ReportKind, Request, register
from idia.compliance.report.people import PERSON_COLUMNS, distractor_groups, person_row, person_summary
from idia.compliance.report.schema import ATTACK_RECORD

# An audit's pages list at most this many people and this many photo hashes; beyond that the pages name the
# strongest evidence and the complete tables travel as attachments. 200 rows are about 4 pages; 3,000 photo
# hashes (the world audit: 300 people, 10 photos each) about 45.
PAGE_PEOPLE = 200
PAGE_PHOTOS = 3000
PHOTO_COLUMNS = ("person", "file", "sha256")


def _by_evidence(s: dict) -> tuple:
    """Strongest evidence first: smallest p-value, then highest continuous score, then name (a total order)."""
    return (float(s["p_value"]), -float(s["mean_log_prob"]), s["name"])


def people_on_pages(summaries: list[dict], cap: int) -> list[dict]:
    """Everyone, in the record's order, when they fit; else the `cap` identified people with the strongest
    evidence (a heap: one pass, not a sort of everyone)."""
    if len(summaries) <= cap:
        return summaries
    return heapq.nsmallest(cap, (s for s in summaries if s["member"]), key=_by_evidence)


def _consecutive_groups(images: list[dict]) -> list[tuple[str, list[dict]]]:
    """The manifest's photos as (person, photos) runs, in the record's order (for the hash appendix)."""
    groups: list[tuple[str, list[dict]]] = []
    for im in images:
        if not groups or groups[-1][0] != im["person"]:
            groups.append((im["person"], []))
        groups[-1][1].append(im)
    return groups


def _attachments(summaries: list[dict], images: list[dict], request: Request) -> tuple[list[Attachment], dict]:
    files = [Attachment("persons.csv", csv_bytes(PERSON_COLUMNS, map(person_row, summaries)),
                        "every audited person: photos, score, verdict, p-value, continuous score, rank, truth"),
             Attachment("photos.csv", csv_bytes(PHOTO_COLUMNS, ((im["person"], im["file"], im["sha256"])
                                                                for im in images)),
                        "every photo the attack read, with its SHA-256")]
    raw, name, limit = request.raw, request.source_name, request.record_limit
    record_note = None
    if len(raw) <= limit:
        files.append(Attachment(name, raw, "the record this report renders (its SHA-256 is the document ID)",
                                relationship="Source"))
    else:
        record_note = (f"{name} ({size_text(len(raw))}) is larger than the {size_text(limit)} attachment "
                       "limit and is not attached; its SHA-256 is this report's document ID")
    return files, {"attachments": files, "record_not_attached": record_note}


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


def build(data: dict, request: Request) -> tuple[dict, list[Attachment]]:
    summaries = [person_summary(p) for p in data["persons"]]
    images = data["manifest"]["inputs"].get("images", [])
    files, notes = _attachments(summaries, images, request)
    context = {
        "persons": summaries,
        # Tallies of the verdicts and labels the attached table lists (not new statistics).
        "n_identified": sum(1 for s in summaries if s["member"]),
        "n_labelled": sum(1 for s in summaries if s["label"] is not None),
        "listed": people_on_pages(summaries, PAGE_PEOPLE), "lists_everyone": len(summaries) <= PAGE_PEOPLE,
        "page_people": PAGE_PEOPLE,
        **_figures(data, summaries),
        "images": images,
        "image_groups": _consecutive_groups(images) if len(images) <= PAGE_PHOTOS else None,
        "page_photos": PAGE_PHOTOS,
        "distractor_groups": distractor_groups(data),
        **notes,
    }
    return context, files


register(ReportKind("audit", "GDPR audit of a CLIP model", ATTACK_RECORD, build))
