"""Records as the reports read them: a field of the wrong type, a special file or a huge one is one clear line."""

import json
import os

import pytest
from idia_testkit import assert_one_line_error, run_idia

from idia.errors import InputError
from idia.io import read_regular_bytes


@pytest.mark.slow
def test_a_record_with_fields_of_the_wrong_type_is_one_line(paper_run, tmp_path):
    from idia.attack.run import write_attack
    from idia.compliance.report import write_report
    path = write_attack(paper_run, tmp_path / "r")
    good = json.loads(path.read_text())
    name = good["persons"][0]["name"]
    for mutate, needle in [(lambda d: d["persons"][0].update(votes="every prompt"), "persons[0].votes must be a list"),
                           (lambda d: d["persons"][0]["votes"][2].update(tie="no"), "persons[0].votes[2].tie"),
                           (lambda d: d["persons"][0].update(score="21"), "persons[0].score must be whole number"),
                           (lambda d: d["rule"].update(n_prompts=None), "rule.n_prompts")]:
        data = json.loads(json.dumps(good))
        mutate(data)
        bad = tmp_path / "bad.json"
        bad.write_text(json.dumps(data))
        for kind, person in (("takedown", name), ("audit", None)):
            with pytest.raises(InputError, match=needle.replace("[", r"\[").replace("]", r"\]")):
                write_report(bad, kind, tmp_path / "x.html", person=person)


def test_special_and_huge_records_are_one_line(tmp_path):
    assert_one_line_error(run_idia("report", "/dev/zero", "--kind", "audit", "--out", tmp_path / "x.pdf"),
                    "/dev/zero: not a regular file")
    fifo = tmp_path / "results.json"
    os.mkfifo(fifo)
    assert_one_line_error(run_idia("report", fifo, "--kind", "audit", "--out", tmp_path / "x.pdf"), "not a regular file")
    big = tmp_path / "big.json"
    with open(big, "wb") as f:
        f.truncate(5000)
    with pytest.raises(InputError, match="5,000 bytes is over the 4,096-byte limit"):
        read_regular_bytes(big, limit=4096, what="JSON record")
