"""The evidence chain of a report: the record it carries (a takedown's holds no one else), its PAdES signature and
RFC 3161 timestamp (a local time-stamping authority, certomancer's, on 127.0.0.1), and `idia check`: intact
reports pass, one changed byte, a swapped attachment and a first page that disagrees with its record fail, and
`--rerun` reproduces the world's audit.

Keys and certificates are made here, at test time: certomancer issues them from keys generated in a temporary
folder, for a test root that is no real CA."""

import copy
import hashlib
import http.server
import io
import json
import re
import shutil
import subprocess
import threading

import pytest
from idia_testkit import keep_people, pdf_text, run_idia, squeeze, write_verification_folder
from pypdf import PdfReader

from idia.compliance import report
from idia.compliance.report import extracts
from idia.compliance.report.check import check_report
from idia.compliance.report.frame import SignatureBlock
from idia.compliance.report.kinds.audit import facts as audit_facts
from idia.compliance.report.signing import PASSPHRASE_ENV, load_signer, load_trust_roots

PASSPHRASE = b"test passphrase, not a secret"
VALID = {"valid-from": "2020-01-01T00:00:00+0000", "valid-to": "2100-01-01T00:00:00+0000"}


def _key_usage(*uses):
    return {"id": "key_usage", "critical": True, "smart-value": {"schema": "key-usage", "params": list(uses)}}


@pytest.fixture(scope="module")
def pki(tmp_path_factory):
    """A test root, a signer (PKCS#12, "Test Auditor" of "Test Audit Office"), another root that signed nothing,
    and a time-stamping authority answering RFC 3161 requests on 127.0.0.1."""
    from asn1crypto import tsp
    from certomancer.registry import CertomancerConfig
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    d = tmp_path_factory.mktemp("pki")
    labels = ("root", "signer", "tsa", "stranger")
    for label in labels:  # the signer's key is RSA: an ECDSA one makes pyHanko declare PDF 2.0 (ISO 32002)
        key = rsa.generate_private_key(65537, 2048) if label == "signer" else ec.generate_private_key(ec.SECP256R1())
        (d / f"{label}.key.pem").write_bytes(key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    ca = [{"id": "basic_constraints", "critical": True, "value": {"ca": True}},
          _key_usage("digital_signature", "key_cert_sign", "crl_sign")]
    config = {
        "keysets": {"test": {"path-prefix": str(d), "keys": {n: {"path": f"{n}.key.pem"} for n in labels}}},
        "pki-architectures": {"idia-test": {
            "keyset": "test",
            "entity-defaults": {"country-name": "XX", "organization-name": "idia test PKI"},
            "entities": {"root": {"common-name": "idia test root (not a real CA)"},
                         "stranger": {"common-name": "another test root (not a real CA)"},
                         "signer": {"common-name": "Test Auditor", "organization-name": "Test Audit Office"},
                         "tsa": {"common-name": "idia test TSA"}},
            "certs": {
                "root": {"subject": "root", "issuer": "root", "validity": VALID, "extensions": ca},
                "stranger": {"subject": "stranger", "issuer": "stranger", "validity": VALID, "extensions": ca},
                "signer": {"issuer": "root", "validity": VALID,
                           "extensions": [_key_usage("digital_signature", "non_repudiation")]},
                "tsa": {"issuer": "root", "validity": VALID,
                        "extensions": [_key_usage("digital_signature"),
                                       {"id": "extended_key_usage", "critical": True, "value": ["time_stamping"]}]}},
            "services": {"time-stamping": {"tsa": {"signing-key": "tsa", "signing-cert": "tsa"}}}}}}
    arch = CertomancerConfig(config, key_search_dir=str(d)).get_pki_arch("idia-test")
    (d / "signer.p12").write_bytes(arch.package_pkcs12("signer", password=PASSPHRASE))
    for label in ("root", "stranger"):
        (d / f"{label}.pem").write_bytes(arch.get_cert(label).dump())
    stamper = arch.service_registry.summon_timestamper("tsa")

    class TSA(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            request = tsp.TimeStampReq.load(self.rfile.read(int(self.headers["Content-Length"])))
            body = stamper.request_tsa_response(request).dump()
            self.send_response(200)
            self.send_header("Content-Type", "application/timestamp-reply")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), TSA)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield {"dir": d, "p12": d / "signer.p12", "root": d / "root.pem", "stranger": d / "stranger.pem",
           "tsa": f"http://127.0.0.1:{server.server_port}/"}
    server.shutdown()


def _small(data: dict, n: int = 8) -> dict:
    """The record cut to n audited people (half identified) and their photos; the reference people (the
    calibration re-derives from them) kept, the metrics (of the full set) dropped, so the record holds together."""
    out = copy.deepcopy(data)
    members = [p for p in out["persons"] if p["member"]][:n // 2]
    keep_people(out, members + [p for p in out["persons"] if not p["member"]][:n - len(members)])
    kept = {p["name"] for p in out["persons"] + out["reference"]}
    out["manifest"]["inputs"]["images"] = [im for im in out["manifest"]["inputs"]["images"] if im["person"] in kept]
    return out


@pytest.fixture(scope="module")
def small_json(tmp_path_factory, calibrated_run):
    path = tmp_path_factory.mktemp("chain") / "results.json"
    path.write_text(json.dumps(_small(calibrated_run.result.to_dict()), indent=2), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def signed_takedown(tmp_path_factory, small_json, pki):
    data = json.loads(small_json.read_text())
    person = data["persons"][0]["name"]
    out = tmp_path_factory.mktemp("signed") / "takedown.pdf"
    signer = load_signer(pki["p12"], PASSPHRASE, pki["tsa"])
    report.write_report(small_json, "takedown", out, person=person, signer=signer)
    return out


def test_a_signed_report_validates_with_pyhanko_pdfsig_and_idia_check(signed_takedown, pki, tmp_path):
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko.sign.validation.status import SignatureCoverageLevel
    from pyhanko_certvalidator import ValidationContext
    pdf = signed_takedown.read_bytes()
    (sig,) = PdfFileReader(io.BytesIO(pdf)).embedded_signatures
    status = validate_pdf_signature(sig, ValidationContext(trust_roots=load_trust_roots([pki["root"]]),
                                                           allow_fetching=False, revocation_mode="soft-fail"))
    assert status.intact and status.valid and status.trusted
    assert sig.coverage == SignatureCoverageLevel.ENTIRE_FILE
    assert status.timestamp_validity is not None and status.timestamp_validity.intact
    reader = PdfReader(io.BytesIO(pdf))
    xmp = reader.trailer["/Root"]["/Metadata"].get_object().get_data()
    assert re.search(rb'pdfaid:part(>|=")3', xmp) and re.search(rb'pdfaid:conformance(>|=")B', xmp)
    assert "/Version" not in reader.trailer["/Root"] and pdf.startswith(b"%PDF-1.7")  # an RSA signer keeps 1.7
    assert reader.attachments  # PDF/A-3b, still carrying its record

    page_one = squeeze(pdf_text(pdf, tmp_path).split("\f")[0])
    assert "SignedbyTestAuditor" in page_one.replace("(PAdES,SHA-256)", "") and "TestAuditOffice" in page_one
    assert "Timestamped(RFC3161)" in page_one

    if shutil.which("pdfsig"):
        out = subprocess.run(["pdfsig", str(signed_takedown)], capture_output=True, text=True, check=False).stdout
        assert "Signature is Valid" in out and "Total document signed" in out and "Test Auditor" in out

    trusted = run_idia("check", signed_takedown, "--trust", pki["root"])
    assert trusted.returncode == 0, trusted.stdout
    assert "trusted (a chain to a --trust root)" in trusted.stdout and trusted.stdout.strip().endswith("intact")
    untrusted = run_idia("check", signed_takedown)
    assert untrusted.returncode == 0 and "trust not judged" in untrusted.stdout
    stranger = run_idia("check", signed_takedown, "--trust", pki["stranger"], "-q")
    assert stranger.returncode == 1
    assert stranger.stdout.strip().splitlines() == [
        f"{signed_takedown}: problem: signature 'idia-signature': the signer's certificate does not chain to any "
        "--trust root (Test Auditor (Test Audit Office))"]


def test_one_changed_byte_breaks_the_signature(signed_takedown, tmp_path):
    pdf = bytearray(signed_takedown.read_bytes())
    at = pdf.index(b"/Producer")  # inside the signed range, outside any compressed stream
    pdf[at + 1] = ord("Q")
    changed = tmp_path / "changed.pdf"
    changed.write_bytes(bytes(pdf))
    result = run_idia("check", changed, "-q")
    assert result.returncode == 1
    assert "the signed bytes were changed after signing" in result.stdout
    appended = tmp_path / "appended.pdf"
    appended.write_bytes(signed_takedown.read_bytes() + b"\n% one more line\n")
    assert "does not cover the whole file" in run_idia("check", appended, "-q").stdout


def test_the_passphrase_comes_from_the_environment_never_an_argument(small_json, pki, tmp_path, monkeypatch):
    person = json.loads(small_json.read_text())["persons"][1]["name"]
    args = ("report", small_json, "--kind", "takedown", "--person", person, "--out", tmp_path / "t.pdf",
            "--sign", pki["p12"], "-q")
    monkeypatch.setenv(PASSPHRASE_ENV, "wrong")
    wrong = run_idia(*args)
    assert wrong.returncode == 2 and "wrong passphrase" in wrong.stderr
    assert run_idia("report", "--help").stdout.count("passphrase") == 1  # named in --sign's help; no option
    assert run_idia("report", small_json, "--kind", "audit", "--out", tmp_path / "a.pdf", "--tsa",
                    pki["tsa"]).returncode == 2  # a timestamp needs a signature


def test_check_fails_on_a_swapped_attachment_and_a_first_page_that_disagrees(small_json, tmp_path):
    data = json.loads(small_json.read_text())
    rendered = report.render("audit", data, raw=small_json.read_bytes())
    # The conclusion in the EDPB's terms: how many people, with which means, at which error rates.
    text = " ".join(re.sub(r"<[^>]+>", " ", rendered.html).split())
    n_identified, cal = sum(p["member"] for p in data["persons"]), data["calibration"]
    assert "“with means reasonably likely to be used”" in text
    assert f"for {n_identified} of {len(data['persons'])} people" in text
    assert f"{cal['reference_false_positives']} of {cal['n_reference']} reference people known never seen" in text
    assert f"a list of {data['rule']['n_candidates']} names" in text and "synthetic world: the conclusion" in text
    intact = report.render_pdf(rendered.html, attachments=rendered.attachments)
    result = check_report(intact)
    assert result.intact, result.problems
    assert result.kind == "audit" and "page 1's 3 figures match the carried record" in result.notes
    def titles(items, depth=0):
        for item in items:
            yield from titles(item, depth + 1) if isinstance(item, list) else [(depth, item.title)]
    outline = list(titles(PdfReader(io.BytesIO(intact)).outline))
    identified = {p["name"] for p in data["persons"] if p["member"]}
    assert identified and {(2, name) for name in identified} <= set(outline)  # a bookmark each, under its section
    assert not {t for _, t in outline} & {p["name"] for p in data["persons"] if not p["member"]}

    swapped = [a if a.name != "persons.csv" else type(a)(a.name, a.data.replace(b",yes,", b",no,", 1), a.description)
               for a in rendered.attachments]
    problems = check_report(report.render_pdf(rendered.html, attachments=swapped)).problems
    assert any(p.startswith("attachment persons.csv: its SHA-256") for p in problems)
    assert "persons.csv is not the table the carried record gives" in problems

    n, identified = len(data["persons"]), sum(p["member"] for p in data["persons"])
    shown = f"{identified} of {n}"
    assert rendered.html.count(shown) >= 1
    disagrees = rendered.html.replace(f">{shown}<", f">{identified + 1} of {n}<", 1)
    problems = check_report(report.render_pdf(disagrees, attachments=rendered.attachments)).problems
    figure = next(f for f in audit_facts(data) if f.key == "identified")
    assert figure.value == shown
    assert problems == [f"page 1 does not show what the carried record gives for identified: {figure.text!r}"]

    claimed = SignatureBlock("Test Auditor", "Test Audit Office", "ab" * 32, "a test root")
    unsigned = report.render("audit", data, raw=small_json.read_bytes(), signature=claimed)
    problems = check_report(report.render_pdf(unsigned.html, attachments=unsigned.attachments)).problems
    assert problems == ["page 1 says the report is signed, but the PDF carries no signature"]

    # A takedown's four figures share the width; laid out 33% each, the fourth ran off the page, unseen though
    # its text is in the file: the check finds text beyond the page's edge.
    takedown = report.render("takedown", data, raw=small_json.read_bytes(), person=data["persons"][0]["name"])
    assert check_report(report.render_pdf(takedown.html, attachments=takedown.attachments)).intact
    squeezed_out = takedown.html.replace("table.facts td { width: auto; }", "")
    problems = check_report(report.render_pdf(squeezed_out, attachments=takedown.attachments)).problems
    assert len(problems) == 1 and problems[0].startswith("page 1 places text beyond the page's edge")


def test_an_audit_over_the_record_limit_carries_the_record_without_raw_answers(small_json, tmp_path):
    out = tmp_path / "audit.pdf"
    report.write_report(small_json, "audit", out, record_limit=1000)
    files = PdfReader(out).attachments
    assert sorted(files) == ["persons.csv", "photos.csv", "results-without-raw-answers.json"]
    extract = json.loads(files["results-without-raw-answers.json"][0])
    assert extract["source"]["sha256"] == hashlib.sha256(small_json.read_bytes()).hexdigest()
    assert not any("votes" in p or "images" in p for p in extract["record"]["persons"])
    result = check_report(out.read_bytes())
    assert result.intact, result.problems


def _strings(value):
    if isinstance(value, dict):
        for k, v in value.items():
            yield k
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif isinstance(value, str):
        yield value


def test_a_takedown_carries_that_persons_record_and_no_other_name(calibrated_json, tmp_path):
    data = json.loads(calibrated_json.read_text())
    everyone = {p["name"] for p in data["persons"] + data["reference"]}
    # The person whose model answers name the most other audited people.
    person = max(data["persons"], key=lambda p: sum(v["vote"] in everyone - {p["name"]} for v in p["votes"]))
    assert any(v["vote"] in everyone - {person["name"]} for v in person["votes"])
    out = tmp_path / "takedown.pdf"
    report.write_report(calibrated_json, "takedown", out, person=person["name"])
    (name, (body,)), = PdfReader(out).attachments.items()
    assert name == "person-record.json"
    carried = json.loads(body)
    assert carried["source"]["sha256"] == hashlib.sha256(calibrated_json.read_bytes()).hexdigest()
    record = carried["record"]
    assert [p["name"] for p in record["persons"]] == [person["name"]] and record["reference"] == []
    others = everyone - {person["name"]}
    words = set(_strings(record)) | {part for s in _strings(record) for part in s.split("/")}
    assert not words & others
    assert extracts.WITHHELD in {v["vote"] for v in record["persons"][0]["votes"]}
    text = " ".join(pdf_text(out.read_bytes(), tmp_path).split())
    assert not [n for n in others if n in text]
    assert check_report(out.read_bytes()).intact


def test_a_mitigation_names_nobody_unless_asked(calibrated_run, tmp_path):
    small = _small(calibrated_run.result.to_dict(), 12)
    path = write_verification_folder(tmp_path, small, small, n_redacted=2)
    verification = json.loads(path.read_text())
    names = {r["name"] for key in ("redacted", "neighbours", "collateral") for r in verification[key]}
    pseudonymous = report.write_report(path, "mitigation", tmp_path / "m.pdf")[0].read_bytes()
    text = " ".join(pdf_text(pseudonymous, tmp_path).split())
    (body,) = [b[0] for b in PdfReader(io.BytesIO(pseudonymous)).attachments.values()]
    assert not [n for n in names if n in text or n.encode() in body]
    assert "redacted-1" in text and check_report(pseudonymous).intact
    named = report.write_report(path, "mitigation", tmp_path / "n.pdf", show_names=True)[0].read_bytes()
    assert all(r["name"] in " ".join(pdf_text(named, tmp_path).split()) for r in verification["redacted"])
    assert check_report(named).intact


def test_rerun_reproduces_the_worlds_audit_and_names_every_difference(calibrated_json, tmp_path):
    from idia.compliance.report.check import Checked
    from idia.compliance.report.rerun import compare, rerun_record
    data = json.loads(calibrated_json.read_text())
    checked = Checked(kind="audit", record=data)
    new = rerun_record(checked)
    assert compare(checked, new) == []
    person = data["persons"][3]
    one = extracts.person_record(data, person)
    assert compare(Checked(kind="takedown", record=one), new) == []

    tampered = copy.deepcopy(data)
    p = tampered["persons"][3]
    p["member"] = not p["member"]
    p["votes"][0]["vote"] = "Someone Else"
    p["mean_log_prob"] += 1e-9  # within the stated tolerance
    p["evidence"]["permutation"]["p_value"] += 1e-12  # a p-value: exactly or not at all
    where = f"persons[{p['name']!r}]"
    assert compare(Checked(kind="audit", record=tampered), new) == [
        f"{where}.member: {p['member']!r} recorded, {not p['member']!r} now",
        f"{where}.votes[0].vote: 'Someone Else' recorded, {person['votes'][0]['vote']!r} now",
        f"{where}.evidence.permutation.p_value: {p['evidence']['permutation']['p_value']!r} recorded, "
        f"{person['evidence']['permutation']['p_value']!r} now"]
    moved = copy.deepcopy(data)
    moved["manifest"]["inputs"]["images"][0]["sha256"] = "0" * 64
    assert compare(Checked(kind="audit", record=moved), new) == [
        "the photos are not the ones recorded: 1 recorded photos not found, 1 photos not in the record (compared "
        "by SHA-256)"]


def test_check_refuses_a_rerun_of_a_mitigation_in_one_line(tmp_path, calibrated_run):
    small = _small(calibrated_run.result.to_dict(), 12)
    path = write_verification_folder(tmp_path, small, small)
    pdf = report.write_report(path, "mitigation", tmp_path / "m.pdf")[0]
    result = run_idia("check", pdf, "--rerun")
    assert result.returncode == 2 and "an audit or takedown report's (this is a mitigation report)" in result.stderr


def test_faults_as_found_stay_fixed(small_json, verification_json):
    """The reader's faults: with one photo a person the redraws are said to mean nothing (no 100%); no photo
    hashes printed (photos.csv carries them); reference photos mentioned only when there are some; a mitigation
    prints no raw keys and no file path in its headline figures."""
    data = json.loads(small_json.read_text())
    for p in data["persons"]:
        p["evidence"]["stability"]["size"] = 1
    person = data["persons"][0]
    audit = " ".join(report.render_html("audit", copy.deepcopy(data)).split())
    assert audit.count("n/a: 1 photo") == len(data["persons"])
    assert not [im["sha256"] for im in data["manifest"]["inputs"]["images"] if im["sha256"] in audit]
    assert "photos of reference people included" in audit
    takedown = " ".join(report.render_html("takedown", copy.deepcopy(data), person=person["name"]).split())
    assert "With one photo, every redraw is that same photo" in takedown
    assert "The permutation verdict stayed the same in" not in takedown
    mitigation = report.render_html("mitigation", json.loads(verification_json.read_text()))
    text = " ".join(re.sub(r"<[^>]+>", " ", mitigation).split())
    assert not re.search(r"names\.names|keep_names_sha256|_sha256 |progress (true|True)| null", text)
    facts = text.split("1. At a glance")[1].split("2. Identification")[0]
    assert "/" not in facts and "utility: top-1 accuracy on" in facts
