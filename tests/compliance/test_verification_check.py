"""A verification holds together or is refused: its summary from its rows, its rows from the attacks it links,
the attacks from their recorded SHA-256; and one made without --utility renders."""

import copy
import json
import re
import shutil

import pytest
from idia_testkit import assert_one_line_error, make_verification, run_idia, write_verification_folder

from idia.compliance import report
from idia.compliance.report.schema import VERIFICATION_RECORD, check_record, load_record
from idia.defense.record import group_summary
from idia.errors import InputError


def _copy(verification_json, tmp_path):
    folder = tmp_path / "v"
    shutil.copytree(verification_json.parent, folder)
    return folder / "verification.json"


def _edit(path, change):
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def test_an_edited_collateral_or_redacted_row_is_refused(verification_json, tmp_path):
    """The probe: editing `collateral` or `redacted` in verification.json went unnoticed. Variant: a row removed
    (with the summary recounted to match), which only the linked attacks can show."""
    data, _ = load_record(verification_json)
    check_record(data, VERIFICATION_RECORD, "mitigation", verification_json.parent)  # as written: it holds
    for change, needle in [
            (lambda d: d["redacted"][0]["after"].update(member=not d["redacted"][0]["after"]["member"]),
             "summary.redacted.identified_after"),
            (lambda d: (d["collateral"][0]["after"].update(p_value=0.5)), "collateral[0].after"),
            (lambda d: (d["collateral"].pop(), d["summary"]["collateral"].update(
                n=d["summary"]["collateral"]["n"] - 1,
                identified_before=sum(r["before"]["member"] for r in d["collateral"]),
                identified_after=sum(r["after"]["member"] for r in d["collateral"]),
                rate_before=sum(r["before"]["member"] for r in d["collateral"]) / len(d["collateral"]),
                rate_after=sum(r["after"]["member"] for r in d["collateral"]) / len(d["collateral"]))),
             "neighbours and collateral")]:
        path = _copy(verification_json, tmp_path / needle[:12])
        _edit(path, change)
        proc = run_idia("report", path, "--kind", "mitigation", "--out", path.parent / "m.html")
        assert_one_line_error(proc, "verification.json: the verification does not hold together", needle)


def test_an_edited_linked_attack_is_refused(verification_json, tmp_path):
    """The probe: editing after/results.json, whose SHA-256 verification.json records, went unnoticed. Variant:
    the linked attack missing."""
    path = _copy(verification_json, tmp_path)
    after = path.parent / "after" / "results.json"
    _edit(after, lambda d: d["warnings"].append("edited"))
    with pytest.raises(InputError, match=r"after/results.json is not the file this verification was written with"):
        report.write_report(path, "mitigation", tmp_path / "m.html")
    after.unlink()
    with pytest.raises(InputError, match="after/results.json: missing"):
        report.write_report(path, "mitigation", tmp_path / "m.html")


def test_the_recalibrated_after_and_the_non_members_are_checked_too(calibrated_run, paper_run, tmp_path):
    """Schema 3: each row's after_recalibrated is that of the recalibrated attack it links, and the non-member
    section lists exactly the labelled non-members. Variant: the recalibrated attack missing."""
    path = write_verification_folder(tmp_path / "v", calibrated_run.result.to_dict(), paper_run.result.to_dict(),
                                     recalibrated=calibrated_run.result.to_dict())
    data, _ = load_record(path)
    assert data["nonmembers"] and all("after_recalibrated" in r for r in data["collateral"])
    check_record(data, VERIFICATION_RECORD, "mitigation", path.parent)  # as written: it holds
    for change, needle in [
            (lambda d: d["collateral"][0]["after_recalibrated"].update(p_value=0.123),
             "collateral[0].after_recalibrated"),
            (lambda d: (d["nonmembers"].pop(), d["summary"].update(nonmembers=group_summary(d["nonmembers"]))),
             "nonmembers")]:
        edited = _copy(path, tmp_path / needle[:12])
        _edit(edited, change)
        with pytest.raises(InputError, match=f"does not hold together: {re.escape(needle)}"):
            report.write_report(edited, "mitigation", edited.parent / "m.html")
    (path.parent / "after-recalibrated" / "results.json").unlink()
    with pytest.raises(InputError, match="after-recalibrated/results.json: missing"):
        report.write_report(path, "mitigation", tmp_path / "m.html")


def test_a_verification_without_utility_renders(calibrated_run):
    """The probe: "the record lacks a field … top1_before" for a verification made without --utility. Variant:
    with a sweep whose rows measured no utility either."""
    v = make_verification(calibrated_run.result.to_dict(), losses=False)
    v["summary"]["utility"] = None
    for row in v["sweep"]["rows"]:
        row["utility_top1"] = None
    html = " ".join(report.render_html("mitigation", copy.deepcopy(v)).split())
    assert "utility (the verification was run without --utility)" in html
    assert "Not measured: the verification was run without" in html
