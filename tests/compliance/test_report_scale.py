"""Audit reports at scale: bounded pages, the complete tables attached inside the PDF with their SHA-256 printed,
the strongest evidence listed first, and a takedown that finds one person the way the linear search did."""

import copy
import csv
import hashlib
import io
import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from idia_testkit import pdf_text, squeeze
from pypdf import PdfReader

from idia.compliance import report
from idia.compliance.report.kinds import audit as audit_kind
from idia.compliance.report.people import PERSON_COLUMNS, find_person
from idia.errors import InputError
from idia.names import name_key, normalize_name


def _grow(data: dict, factor: int) -> dict:
    """The record with every audited person copied `factor` times under new names (photos and the votes naming them
    included; without labels, whose metrics would no longer follow from the persons), so it still holds together."""
    out = copy.deepcopy(data)
    out["metrics"] = None
    persons, images = [], [im for im in out["manifest"]["inputs"]["images"]
                           if im["person"] not in {p["name"] for p in data["persons"]}]
    for k in range(factor):
        for p in data["persons"]:
            q = copy.deepcopy(p)
            q["name"] = f"{p['name']} {k}" if k else p["name"]
            q["label"] = None
            for v in q["votes"]:
                v["vote"] = q["name"] if v["is_true_name"] else v["vote"]
            for i, im in enumerate(q["images"]):
                im["sha256"] = hashlib.sha256(f"{q['name']}/{i}".encode()).hexdigest()
                images.append({"person": q["name"], "file": im["file"], "sha256": im["sha256"]})
            persons.append(q)
    out["persons"] = persons
    out["manifest"]["inputs"]["images"] = images
    return out


@pytest.fixture
def small_pages(monkeypatch):
    """Caps small enough that the 200-person world record is 'large': 20 people and 100 photos in the pages."""
    monkeypatch.setattr(audit_kind, "PAGE_PEOPLE", 20)
    monkeypatch.setattr(audit_kind, "PAGE_PHOTOS", 100)


def test_audit_attaches_every_person_and_photo_with_their_sha256_printed(calibrated_json, tmp_path, small_pages):
    data = json.loads(calibrated_json.read_text())
    out = tmp_path / "audit.pdf"
    report.write_report(calibrated_json, "audit", out)
    pdf = out.read_bytes()
    files = PdfReader(io.BytesIO(pdf)).attachments
    assert sorted(files) == ["persons.csv", "photos.csv", "results.json"]
    flat = squeeze(pdf_text(pdf, tmp_path))
    for name, (body,) in files.items():
        assert hashlib.sha256(body).hexdigest() in flat, name  # the printed fingerprint is the attached file's
    assert files["results.json"][0] == calibrated_json.read_bytes()

    rows = list(csv.DictReader(io.StringIO(files["persons.csv"][0].decode("utf-8"))))
    assert tuple(rows[0]) == PERSON_COLUMNS
    assert [r["name"] for r in rows] == [p["name"] for p in data["persons"]]
    for r, p in zip(rows, data["persons"]):
        assert r["identified"] == ("yes" if p["member"] else "no")
        assert int(r["score"]) == p["score"] and int(r["n_images"]) == p["n_images"]
        assert float(r["p_value"]) == p["p_value"] and float(r["mean_log_prob"]) == p["mean_log_prob"]
        assert r["label"] == {None: "", True: "member", False: "non-member"}[p["label"]]
    photos = list(csv.DictReader(io.StringIO(files["photos.csv"][0].decode("utf-8"))))
    assert [(r["person"], r["file"], r["sha256"]) for r in photos] == \
        [(im["person"], im["file"], im["sha256"]) for im in data["manifest"]["inputs"]["images"]]

    # The pages: the 20 identified people with the strongest evidence, and how many more the CSV holds.
    identified = sorted((p for p in data["persons"] if p["member"]),
                        key=lambda p: (p["p_value"], -p["mean_log_prob"], p["name"]))
    assert len(identified) > 20
    text = " ".join(pdf_text(pdf, tmp_path).split())
    assert all(p["name"] in text for p in identified[:20])
    assert not any(p["name"] in text for p in data["persons"] if not p["member"])
    assert f"The other {len(identified) - 20} identified people" in text
    assert f"all {len(data['persons'])} audited people" in text
    assert "their SHA-256 fingerprints are in photos.csv" in text


def test_audit_pages_do_not_grow_with_the_number_of_people(calibrated_run, tmp_path, small_pages):
    data = calibrated_run.result.to_dict()
    pages = {}
    for factor in (1, 5):
        path = tmp_path / f"x{factor}.json"
        path.write_text(json.dumps(_grow(data, factor), indent=2), encoding="utf-8")
        report.write_report(path, "audit", tmp_path / f"x{factor}.pdf")
        reader = PdfReader(tmp_path / f"x{factor}.pdf")
        pages[factor] = len(reader.pages)
        rows = reader.attachments["persons.csv"][0].decode().count("\n") - 1
        assert rows == factor * len(data["persons"])
    assert pages[5] == pages[1]


def test_a_record_over_the_limit_is_named_not_attached(calibrated_json, tmp_path, small_pages):
    out = tmp_path / "audit.pdf"
    report.write_report(calibrated_json, "audit", out, record_limit=1000)
    files = PdfReader(out).attachments
    assert sorted(files) == ["persons.csv", "photos.csv"]
    text = " ".join(pdf_text(out.read_bytes(), tmp_path).split())
    assert "is larger than the 1,000 bytes attachment limit and is not attached" in text


def test_takedown_pdf_carries_no_attachment(calibrated_json, tmp_path):
    data = json.loads(calibrated_json.read_text())
    out = tmp_path / "t.pdf"
    report.write_report(calibrated_json, "takedown", out, person=data["persons"][0]["name"])
    assert PdfReader(out).attachments == {} and b"/EmbeddedFile" not in out.read_bytes()


# --- the fast rules against their slow obvious twins ---------------------------------------------------------

def _find_person_linear(people: list[dict], person: str) -> dict:
    """The search the takedown did before it indexed names: a scan per try."""
    for wanted in (person, normalize_name(person)):
        for p in people:
            if p["name"] == wanted:
                return p
    folded = name_key(person)
    same = [p for p in people if name_key(p["name"]) == folded]
    if len(same) == 1:
        return same[0]
    raise InputError("not found")


NAMES = st.text(alphabet=st.sampled_from("aAbB é\u0065\u0301"), min_size=1, max_size=4)


@settings(max_examples=300, deadline=None)
@given(st.lists(NAMES, min_size=1, max_size=12), NAMES)
def test_indexed_person_lookup_equals_the_linear_search(names, query):
    people = [{"name": n, "i": i} for i, n in enumerate(names)]
    try:
        expected = _find_person_linear(people, query)["i"]
    except InputError:
        expected = None
    try:
        found = find_person({"persons": people}, query)["i"]
    except InputError:
        found = None
    assert found == expected


PERSON = st.fixed_dictionaries({
    "name": st.text(alphabet="abcxyz", min_size=1, max_size=3),
    "member": st.booleans(),
    "p_value": st.sampled_from([0.001, 0.01, 0.5, 1.0]),
    "mean_log_prob": st.sampled_from([-1e30, -9.5, -3.0, -0.5]),
})


@settings(max_examples=200, deadline=None)
@given(st.lists(PERSON, max_size=40), st.integers(min_value=1, max_value=10))
def test_people_on_pages_are_everyone_or_the_sorted_top_of_the_identified(persons, cap):
    summaries = [{**p, "n_images": 1, "score": 0, "mean_rank": 1.0, "mean_prob": 0.1, "label": None}
                 for p in persons]
    listed = audit_kind.people_on_pages(summaries, cap)
    if len(summaries) <= cap:
        assert listed == summaries
    else:
        assert listed == sorted((s for s in summaries if s["member"]),
                                key=lambda s: (s["p_value"], -s["mean_log_prob"], s["name"]))[:cap]


def test_a_person_missing_a_field_is_one_clear_line(calibrated_run):
    data = calibrated_run.result.to_dict()
    broken = copy.deepcopy(data)
    del broken["persons"][3]["score"]
    for kind, person in (("audit", None), ("takedown", broken["persons"][3]["name"])):
        with pytest.raises(InputError, match=r"lacks persons\[3\]\.score"):
            report.render(kind, broken, person=person)
    extra = copy.deepcopy(data)
    extra["persons"][0]["surprise"] = 1
    with pytest.raises(InputError, match="malformed for a takedown report.*surprise"):
        report.render("takedown", extra, person=extra["persons"][0]["name"])


def test_the_record_checks_are_the_dataclasses_fields():
    """The report's checks are derived from attack.record.results: every field, its type, no second list."""
    from dataclasses import fields

    from idia.attack.record.results import ImageAnswer, PersonResult, PromptVote
    from idia.compliance.report import schema
    person = schema.attack_fields().fields["persons"].item
    assert set(person.fields) == {f.name for f in fields(PersonResult)}
    assert set(person.optional) == {"label", "evidence", "distractor_group", "occurrences"}  # default None: may be absent
    assert set(person.fields["votes"].item.fields) == {f.name for f in fields(PromptVote)}
    image = person.fields["images"].item
    assert set(image.fields) == {f.name for f in fields(ImageAnswer)}
    assert image.fields["top"] == schema.ListOf(schema.Row((schema.TEXT, schema.NUMBER)))


def test_a_field_added_to_a_record_dataclass_is_checked_without_a_second_edit():
    from dataclasses import dataclass, field

    from idia.compliance.report import schema

    @dataclass
    class Vote:
        name: str
        weight: float

    @dataclass
    class Entry:
        name: str
        count: int
        votes: list[Vote] = field(default_factory=list)
        pair: tuple[str, float] | None = None
        note: str | None = None

    spec = schema.spec_of(Entry)
    schema.check_fields({"name": "a", "count": 2, "votes": [{"name": "b", "weight": 1}]}, spec, "x")  # note absent
    for bad, needle in [({"name": "a", "count": 2.5, "votes": []}, r"x\.count must be whole number, got 2\.5"),
                        ({"name": "a", "votes": []}, r"lacks x\.count"),
                        ({"name": "a", "count": 1}, r"lacks x\.votes"),
                        ({"name": "a", "count": 1, "votes": [{"name": "b", "weight": "1"}]},
                         r"x\.votes\[0\]\.weight must be number"),
                        ({"name": "a", "count": 1, "votes": [], "pair": ["b"]},
                         r"x\.pair must be a list of 2 \(text, number\) or null"),
                        ({"name": "a", "count": 1, "votes": [], "note": True}, r"x\.note must be text or null")]:
        with pytest.raises(InputError, match=needle):
            schema.check_fields(bad, spec, "x")
