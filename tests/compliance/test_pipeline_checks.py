"""The YAML audit checks before it runs and trusts nothing on resume: a takedown of someone not audited, an output
folder inside the people, a photo swapped at the same size and time, a record edited since it was written."""

import json
import os

import pytest
from idia_testkit import assert_one_line_error, noise_people, photo, run_idia

from idia.compliance.config import load_config
from idia.compliance.pipeline import _holds_together, fingerprint, run_audit
from idia.errors import InputError


def _config(tmp_path, output="out", person="Nobody Here"):
    noise_people(tmp_path / "people", n_people=2, n_photos=1)
    path = tmp_path / "audit.yaml"
    path.write_text(f"model: world\npeople: people\noutput: {output}\nreports:\n"
                    f"  - kind: takedown\n    person: {json.dumps(person)}\n", encoding="utf-8")
    return path


def test_a_takedown_of_someone_not_audited_is_refused_before_the_attack(tmp_path):
    """The probe: it failed only after the whole attack. Variant: through `idia audit`, one line."""
    path = _config(tmp_path)
    with pytest.raises(InputError, match="the takedown report is about 'Nobody Here', who has no folder"):
        run_audit(load_config(path), progress=False)
    assert not (tmp_path / "out" / "attack").exists()
    assert_one_line_error(run_idia("audit", path, "-q"), "who has no folder in", "nothing was run")


def test_an_output_folder_inside_the_people_is_refused(tmp_path):
    """The probe: an output folder inside --people was accepted and became a "person" on the next run. Variant:
    the YAML audit's output."""
    path = _config(tmp_path, output="people/results", person="PersonA ExampleA")
    with pytest.raises(InputError, match="is inside --people"):
        run_audit(load_config(path), progress=False)
    proc = run_idia("attack", "--model", "world", "--people", tmp_path / "people", "--out",
                    tmp_path / "people" / "o", "-q")
    assert_one_line_error(proc, "--out", "is inside --people", "the next run would read it as a person folder")
    assert not (tmp_path / "people" / "o").exists()


def test_a_photo_swapped_at_the_same_size_and_time_changes_the_fingerprint(tmp_path):
    """The probe: resume trusted name, size and mtime. Variant: a copy with new times but the same bytes does
    not make a rerun."""
    a = photo(tmp_path / "people" / "Ada Byron" / "a.png", seed=1, size=(32, 32))
    before = fingerprint(tmp_path / "people")
    st = a.stat()
    photo(a, seed=2, size=(32, 32))
    os.utime(a, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert a.stat().st_size == st.st_size and a.stat().st_mtime_ns == st.st_mtime_ns
    swapped = fingerprint(tmp_path / "people")
    assert swapped != before
    os.utime(a, ns=(1, 1))
    assert fingerprint(tmp_path / "people") == swapped


def test_a_finished_step_whose_record_was_edited_is_run_again(paper_json, tmp_path):
    """On resume a record is checked like any reader checks it; an edited one is not trusted."""
    said = []
    path = tmp_path / "results.json"
    path.write_bytes(paper_json.read_bytes())
    assert _holds_together(path, said.append) and not said
    data = json.loads(path.read_text())
    data["persons"][0]["member"] = not data["persons"][0]["member"]
    path.write_text(json.dumps(data))
    assert not _holds_together(path, said.append)
    assert "does not hold together" in said[0] and said[0].endswith("running the step again")
