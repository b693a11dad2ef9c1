"""Evidence reports: each kind renders the record's verdicts, statistics and hashes; hostile names stay text;
nothing but data: URIs is ever loaded; photos appear only when asked for."""

import hashlib
import http.server
import json
import re
import subprocess
import sys
import threading

import pytest
from click.testing import CliRunner
from idia_testkit import HOSTILE, make_verification, pdf_text, squeeze
from pypdf import PdfReader

from idia.compliance import report
from idia.compliance.cli import main
from idia.compliance.report import plots, templating
from idia.defense.record import group_summary
from idia.defense.tuning import face_tuning
from idia.errors import InputError

# --- helpers -------------------------------------------------------------------------------------------------


def n_images(pdf: bytes) -> int:
    """Distinct image objects the pages use (pages may share resources, so count each object once)."""
    import io
    refs = set()
    for page in PdfReader(io.BytesIO(pdf)).pages:
        resources = page.get("/Resources")
        xobjects = resources.get_object().get("/XObject") if resources is not None else None
        for ref in (xobjects.get_object() if xobjects is not None else {}).values():
            if ref.get_object().get("/Subtype") == "/Image":
                refs.add(ref.idnum)
    return len(refs)


def attachments(pdf: bytes) -> dict:
    import io
    return PdfReader(io.BytesIO(pdf)).attachments


# --- the three kinds -----------------------------------------------------------------------------------------

def test_takedown_shows_verdict_statistic_votes_and_hashes(calibrated_json, tmp_path):
    data = json.loads(calibrated_json.read_text())
    p = next(x for x in data["persons"] if x["member"] and x["label"])
    out = tmp_path / "takedown.pdf"
    report.write_report(calibrated_json, "takedown", out, person=p["name"])
    pdf = out.read_bytes()
    text = pdf_text(pdf, tmp_path)
    flat = squeeze(text)
    assert "Linked: the model links this name to these photos" in text  # what the test shows, no more (issue 18)
    assert "names this person" not in text and "strong evidence" not in text
    assert p["name"] in text
    assert f"{p['score']} of 21" in text
    assert f"probability at most {templating._pval(p['p_value'])}" in " ".join(text.split())
    assert templating._pval(p["p_value"]) in text
    assert squeeze(data["calibration"]["p_value"]) in flat  # how the p-value was measured
    assert f"{100 * data['calibration']['reference_fpr']:.1f}%" in text  # the calibrated false-positive rate
    assert data["model"]["checkpoint_sha256"] in flat
    assert p["images"][0]["sha256"] in flat and p["images"][-1]["sha256"] in flat
    assert squeeze(data["manifest"]["command"]) in flat
    assert "A negative result does not prove absence" in text
    assert "not included in this report" in text  # photos: absent by default, and the report says so
    assert n_images(pdf) == 0
    # document ID = SHA-256 of the input file, on every page
    doc_id = hashlib.sha256(calibrated_json.read_bytes()).hexdigest()
    pages = text.split("\f")[:-1]
    assert len(pages) >= 2 and all(doc_id in squeeze(page) for page in pages)
    footer = re.compile(r"Generated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ UTC · page \d+ of \d+")
    assert all(footer.search(page) for page in pages)


def test_takedown_of_a_non_member_under_the_paper_rule(paper_json, tmp_path):
    data = json.loads(paper_json.read_text())
    p = next(x for x in data["persons"] if not x["member"])
    html = report.render_html("takedown", data, person=p["name"])
    assert "No link shown by this test" in html
    assert "No reference people were measured" in html  # no calibration: the p-value is a bound
    assert "analytic bound" in html


def test_photos_only_with_include_photos(calibrated_json, tmp_path):
    data = json.loads(calibrated_json.read_text())
    p = next(x for x in data["persons"] if x["member"])
    html = report.render_html("takedown", data, person=p["name"], include_photos=True)
    assert html.count('<img src="data:image/png;base64,') == p["n_images"]
    pdf = report.render_pdf(html)
    assert n_images(pdf) == p["n_images"]
    assert "data:image" not in report.render_html("takedown", data, person=p["name"])


def test_photo_whose_file_changed_is_not_shown(calibrated_json, tmp_path):
    data = json.loads(calibrated_json.read_text())
    p = data["persons"][0]
    p["images"][0]["sha256"] = "0" * 64  # the record (photo and manifest alike) names other bytes than the file's
    next(im for im in data["manifest"]["inputs"]["images"] if im["file"] == p["images"][0]["file"])["sha256"] = "0" * 64
    html = report.render_html("takedown", data, person=p["name"], include_photos=True)
    assert html.count("data:image/png") == p["n_images"] - 1
    assert "SHA-256 differs" in html


def test_audit_shows_table_distribution_roc_and_manifest(calibrated_json, tmp_path):
    data = json.loads(calibrated_json.read_text())
    out = tmp_path / "audit.pdf"
    html_out = tmp_path / "audit.html"
    report.write_report(calibrated_json, "audit", out, html_out=html_out)
    pdf = out.read_bytes()
    text = pdf_text(pdf, tmp_path)
    flat = squeeze(text)
    n_ident = sum(p["member"] for p in data["persons"])
    assert f"{n_ident} of {len(data['persons'])}" in text
    assert f"{data['metrics']['roc']['auc']:.3f}" in text
    assert "Recommended measures" in text and "idia defend redact" in text
    for p in data["persons"][:3]:
        assert p["name"] in text
    assert data["model"]["checkpoint_sha256"] in flat
    assert data["candidates"]["sha256"] in flat
    assert data["manifest"]["inputs"]["templates_sha256"] in flat
    images = data["manifest"]["inputs"]["images"]
    assert f"{len(images)} files" in text
    # The photo hashes are not printed over dozens of pages: photos.csv, attached, holds them, and the page says so.
    assert images[0]["sha256"] not in flat and "every file's SHA-256 is in photos.csv, attached" in " ".join(text.split())
    photos = attachments(pdf)["photos.csv"][0].decode()
    assert images[0]["sha256"] in photos and images[-1]["sha256"] in photos
    assert n_images(pdf) == 2  # score distribution and ROC; no photos
    assert html_out.read_text().count("data:image/png;base64,") == 2


def test_audit_without_reference_or_labels(paper_json):
    data = json.loads(paper_json.read_text())
    data["metrics"] = None
    for p in data["persons"]:
        p["label"] = None
    html = report.render_html("audit", data)
    assert "not measured" in html and "No ground truth was supplied" in html
    assert "--reference" in html  # recommends measuring the error rate
    assert html.count("data:image/png;base64,") == 1  # distribution only; no ROC without labels


def test_an_fdr_audit_that_flagged_nobody_says_why_in_its_findings(paper_json):
    """The record's why_none_flagged (decide.refine.fdr_power_note) is printed beside the count, and the people the
    model is known to know at least are stated as a lower bound."""
    import numpy as np

    from idia.attack.decide.fdr import fdr_summary
    from idia.attack.decide.levels import choose_level
    data = json.loads(paper_json.read_text())
    p = np.r_[np.full(5, 0.001), np.linspace(0.02, 1, len(data["persons"]) - 5)]
    data["fdr"] = {**fdr_summary(p, np.zeros(len(p), bool), 0.0, choose_level(None, 0.05, len(p)).describe()),
                   "why_none_flagged": "nobody is flagged at a false-discovery rate of 0.05 among 200 people"}
    text = squeeze(report.render_html("audit", data))
    assert "Whynobodyisflagged:nobodyisflaggedatafalse-discoveryrateof0.05among200people." in text
    assert f"andatleast{data['fdr']['known_at_least95']}(95%lowerbound;" in text


def test_mitigation_shows_before_after_settings_and_plots(verification_json, tmp_path):
    v = json.loads(verification_json.read_text())
    out = tmp_path / "mitigation.pdf"
    report.write_report(verification_json, "mitigation", out, show_names=True)
    pdf = out.read_bytes()
    text = pdf_text(pdf, tmp_path)
    flat = squeeze(text)
    s = v["summary"]
    assert squeeze(f"{s['redacted']['identified_before']} → {s['redacted']['identified_after']}") in flat
    assert "92.5% → 90.0%" in text  # utility before → after
    assert v["redacted"][0]["name"] in text
    if v["neighbours"]:
        assert v["neighbours"][0]["name"] in text
    assert v["defense"]["record"]["checkpoint_sha256_before"] in flat
    assert v["defense"]["record"]["checkpoint_sha256_after"] in flat
    assert "weights: utility" in text  # nested settings, flattened into words
    assert n_images(pdf) == 3  # training curve, identification by strength, and the trade-off plot


def test_mitigation_without_training_or_sweep_omits_the_plots(calibrated_run):
    v = make_verification(calibrated_run.result.to_dict(), losses=False, sweep=False)
    html = report.render_html("mitigation", v)
    assert "data:image" not in html
    assert "No training steps were recorded" in html
    assert "unchanged: the defense does not alter the weights" in html


def test_mitigation_leads_with_the_verdict_and_shows_non_members_intervals_and_probes_not_run(calibrated_run):
    v = make_verification(calibrated_run.result.to_dict(), sweep=False)
    v["schema_version"] = 3
    gone = v["redacted"][0]["name"]
    stranger = {"name": "Nadia Nonmember", "before": {**v["redacted"][0]["before"], "member": False},
                "after": {**v["redacted"][0]["before"], "member": True}}
    unmoved = {**v["redacted"][0]["before"], "member": False}
    v["nonmembers"] = [stranger] + [{"name": f"Nonmember {i}", "before": unmoved, "after": unmoved}
                                    for i in range(99)]
    v["summary"]["nonmembers"] = group_summary(v["nonmembers"])
    assert v["summary"]["nonmembers"]["newly_identified"] == 1
    v["summary"]["utility"].update({"change": -0.025, "change_ci95": [-0.061, 0.011],
                                    "top1_before_ci95": [0.86, 0.96], "top1_after_ci95": [0.83, 0.94],
                                    "images_lost": 4, "images_gained": 1, "ci_method": "Agresti and Min"})
    v["decision"] = {"judged_at": "the before attack's decision boundary",
                     "before": {"rule": "calibrated-continuous", "threshold": -2.5, "boundary": {}, "fixed": False},
                     "after_recalibrated": {"rule": "calibrated-continuous", "threshold": -3.25, "boundary": {},
                                            "fixed": False}}
    v["probes_not_run"] = [{"probe": "relearning", "why": "no relearning step counts given"}]
    v["verdict"] = {"forgotten": False, "text": "not forgotten: 1 of 3 redacted people are still identified, by "
                                                "variant:last", "rule": "every redacted person at or below the "
                    "before threshold", "probes_run": ["unseen-photos", "variant:last"],
                    "failed_probes": ["variant:last"], "probes_not_run": ["relearning"],
                    "per_person": [{"name": gone, "forgotten": False, "identified_by": ["variant:last"]}]}
    v["defense"]["settings"]["variants"] = "last"
    v["defense"]["tuning"] = face_tuning()
    text = squeeze(report.render_html("mitigation", v))
    assert "Notforgotten" in text and "byvariant:last" in text
    assert "Non-membersnewlyidentifiedafterthedefense:1of100" in text and "NadiaNonmember" in text
    assert "-2.5%(95%CI-6.1%to1.1%)" in text and "threshold-2.500" in text and "(-3.250)" in text
    plain = re.sub(r"<[^>]+>", "", text)  # names and reasons are wrapped as user text (<bdi>)
    assert "relearning:norelearningstepcountsgiven" in plain
    assert "otherformstheredactedpeopleareknownby(last)" in plain
    # How the face redaction's defaults were chosen, the held-out world's figures, and the recommendation.
    assert "Chosenonworldseeds0,1andjudgedonseed2,whichwasneverusedforchoosing" in plain
    assert "0chosenon10→2of1086→82of90(-4.4points)0of10065.3%→62.2%yes" in plain
    assert "1chosenon10→2of1090→88of90(-2.2points)0of10063.9%→59.7%yes" in plain
    assert "2judgedon(neverusedforchoosing)10→2of1090→87of90(-3.3points)0of10057.5%→51.4%no" in plain
    assert "donotmeetthegoal(utilitylost6.1points,goalatmost5)" in plain
    assert "thetext-towerredaction(--towertext,thedefault)istherecommendeddefault" in plain


# --- hostile input -------------------------------------------------------------------------------------------

def test_hostile_names_come_out_as_text_and_nothing_local_is_read(hostile_json, tmp_path):
    data = json.loads(hostile_json.read_text())
    for kind, person in [("audit", None), ("takedown", HOSTILE["html"]), ("takedown", HOSTILE["rlo"])]:
        html = report.render_html(kind, data, person=person)
        assert '<img src="file' not in html and "<script>" not in html and 'rel="attachment"' not in html
        assert ("&lt;img src=&#34;file:///etc/passwd&#34;&gt;" in html) == (person != HOSTILE["rlo"])
        assert "\u202e" not in html  # a bidi override is spelled out, not obeyed
        shows_rlo = person in (None, HOSTILE["rlo"])
        assert ("[U+202E]evil" in html) == shows_rlo
        from idia.compliance.report.fetcher import DataOnlyURLFetcher  # imports weasyprint: not at collection
        fetcher = DataOnlyURLFetcher()
        pdf = report.render_pdf(html, url_fetcher=fetcher)
        assert all(url.startswith("data:") for url in fetcher.requested) and not fetcher.refused
        assert attachments(pdf) == {} and b"/EmbeddedFile" not in pdf
        text = pdf_text(pdf, tmp_path)
        assert "root:x:0:0" not in text
        assert ('<img src="file:///etc/passwd">' in text) == (person != HOSTILE["rlo"])
        assert ("[U+202E]evil" in text) == shows_rlo
        if kind == "audit":
            flat = squeeze(text)
            assert "<script>alert(1)</script>" in flat and squeeze(HOSTILE["long"]) in flat
            for name in (HOSTILE["arabic"], HOSTILE["hebrew"]):
                assert all(ch in text for ch in name.replace(" ", ""))


@pytest.mark.slow
def test_the_fetcher_refuses_files_network_and_attachments(tmp_path):
    """Raw hostile HTML straight to the PDF engine: our fetcher loads none of it; weasyprint's default would."""
    secret = tmp_path / "secret.txt"
    secret.write_text("root:x:0:0:TOP-SECRET\n")
    hits = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            self.send_response(404)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    web = f"http://127.0.0.1:{server.server_port}"
    file_url = secret.as_uri()
    html = f"""<html><head><link rel="stylesheet" href="{file_url}"><link rel="attachment" href="{file_url}">
      <style>@import url("{web}/a.css"); @font-face {{ font-family: x; src: url("{file_url}"); }}
      body {{ background: url("{web}/bg.png"); font-family: x; }}</style></head>
      <body><img src="{file_url}"><img src="{web}/i.png"><a rel="attachment" href="{file_url}">f</a>
      <object data="{file_url}"></object><embed src="{file_url}"><iframe src="{file_url}"></iframe>
      <svg width="10" height="10"><image href="{file_url}"/></svg><p>text</p></body></html>"""
    try:
        from idia.compliance.report.fetcher import DataOnlyURLFetcher
        fetcher = DataOnlyURLFetcher()
        pdf = report.render_pdf(html, url_fetcher=fetcher)
        assert hits == []
        assert fetcher.refused and set(fetcher.refused) == set(fetcher.requested)
        assert {u.split(":")[0] for u in fetcher.refused} == {"file", "http"}
        assert attachments(pdf) == {} and b"TOP-SECRET" not in pdf
        assert "TOP-SECRET" not in pdf_text(pdf, tmp_path)
        # Control: weasyprint's own fetcher embeds the file and calls the server, so the checks above can fail.
        from weasyprint import HTML
        default = HTML(string=html).write_pdf()
        assert "secret.txt" in attachments(default) and hits
    finally:
        server.shutdown()
        server.server_close()


# --- bad input, CLI, determinism -----------------------------------------------------------------------------

def test_bad_input_is_one_line_naming_the_file(calibrated_json, verification_json, tmp_path):
    cases = [
        (tmp_path / "missing.json", "takedown", "A", "no such file"),
        (calibrated_json, "mitigation", None, "needs a verification.json"),
        (verification_json, "audit", None, "needs a results.json"),
        (calibrated_json, "takedown", "Nobody Atall", "no audited person named 'Nobody Atall'"),
        (calibrated_json, "takedown", None, "give --person NAME"),
        (calibrated_json, "audit", "Somebody", "--person applies to takedown reports only"),
    ]
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    cases.append((broken, "audit", None, "not a JSON record"))
    old = tmp_path / "old.json"
    old.write_text(json.dumps({**json.loads(calibrated_json.read_text()), "schema_version": 99}))
    cases.append((old, "audit", None, "schema version 99"))
    for path, kind, person, expected in cases:
        with pytest.raises(InputError) as err:
            report.write_report(path, kind, tmp_path / "out.pdf", person=person)
        message = str(err.value)
        assert expected in message and str(path) in message and "\n" not in message
    assert not (tmp_path / "out.pdf").exists()


def test_cli_writes_pdf_and_html_and_fails_cleanly(calibrated_json, tmp_path):
    data = json.loads(calibrated_json.read_text())
    name = data["persons"][1]["name"]
    runner = CliRunner()
    out, html = tmp_path / "r.pdf", tmp_path / "r.html"
    res = runner.invoke(main, ["report", str(calibrated_json), "--kind", "takedown", "--person", name,
                               "--html", str(html), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    assert out.read_bytes().startswith(b"%PDF") and html.read_text().startswith("<!DOCTYPE html>")
    only_html = tmp_path / "only.html"
    res = runner.invoke(main, ["report", str(calibrated_json), "--kind", "takedown", "--person", name,
                               "--out", str(only_html)])
    assert res.exit_code == 0 and only_html.read_text().startswith("<!DOCTYPE html>")
    res = runner.invoke(main, ["report", str(tmp_path / "nope.json"), "--kind", "audit", "--out", str(out)])
    assert res.exit_code == 2 and "idia: error:" in res.output and "nope.json" in res.output


def test_same_record_and_date_give_the_same_report(calibrated_json, monkeypatch):
    data = json.loads(calibrated_json.read_text())
    monkeypatch.setenv("SOURCE_DATE_EPOCH", "1700000000")
    first = report.render_html("audit", data)
    assert first == report.render_html("audit", data)
    assert "2023-11-14T22:13:20Z" in first


def test_plots_are_deterministic_and_templates_are_ours_only():
    a = plots.score_distribution([-1.0, -2.0, -5.0, -1e30], [-10.0, -12.0], -9.0)
    assert a == plots.score_distribution([-1.0, -2.0, -5.0, -1e30], [-10.0, -12.0], -9.0)
    assert a.startswith("data:image/png;base64,")
    assert templating._template_source("../../../etc/passwd") is None
    env = templating.environment()
    assert env.autoescape is True and env.undefined.__name__ == "StrictUndefined"


def test_importing_the_reports_loads_no_model_pdf_or_plotting_library():
    code = ("import sys, idia.compliance.report, idia.compliance.commands.report; "
            "print(idia.compliance.report.REPORT_KINDS.names()); "
            "print(sorted(m for m in ('torch', 'open_clip', 'weasyprint', 'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-P", "-c", code], check=True, capture_output=True, text=True).stdout
    assert out.splitlines() == ["('audit', 'mitigation', 'takedown')", "[]"]


def test_the_verification_record_is_the_one_defense_verify_writes():
    from idia.compliance.report import schema
    from idia.defense.record import KIND_VERIFICATION, SCHEMA_VERSION
    assert schema.VERIFICATION_RECORD.kind == KIND_VERIFICATION
    assert SCHEMA_VERSION in schema.VERIFICATION_SCHEMAS  # the mitigation report renders what verify writes now


def test_report_person_is_found_in_any_unicode_form_and_case():
    from idia.compliance.report.people import find_person as _find_person
    data = {"persons": [{"name": "Zo\u00eb Martin"}, {"name": "Bob Stone"}]}
    assert _find_person(data, "ZOE\u0308  martin")["name"] == "Zo\u00eb Martin"
