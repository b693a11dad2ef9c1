"""`idia audit config.yaml`: the whole pipeline from one file, resumable after an interruption."""

import json
import os
import shutil
import unicodedata
from pathlib import Path

import pytest
from idia_testkit import pdf_file_text, photo, run_idia

from idia.compliance.config import load_config
from idia.compliance.pipeline import _safe_stem, run_audit


@pytest.fixture(scope="module")
def small_world(world_photos, tmp_path_factory):
    """A small copy of the world's photo folders: 6 members and 6 non-members, 5 photos each, 4 shape classes."""
    root = tmp_path_factory.mktemp("small-world")
    labels = json.loads((world_photos / "labels.json").read_text())
    members = sorted(n for n, m in labels.items() if m)[:6]
    others = sorted(n for n, m in labels.items() if not m)[:6]
    for name in members + others:
        (root / "people" / name).mkdir(parents=True)
        for f in sorted((world_photos / "people" / name).glob("*.png"))[:5]:
            shutil.copy(f, root / "people" / name / f.name)
    for cls in sorted((world_photos / "shapes").iterdir())[:4]:
        shutil.copytree(cls, root / "shapes" / cls.name)
    (root / "labels.json").write_text(json.dumps({n: labels[n] for n in members + others}))
    (root / "redact.txt").write_text("\n".join(members[:2]) + "\n")
    return root, members


def _config(root, members, output="out", extra_report=""):
    text = f"""\
model: world
people: people
labels: labels.json
n_candidates: 200
utility: shapes
defenses:
  - kind: redact
    names: redact.txt
    steps: 15
reports:
  - kind: audit
  - kind: takedown
    person: {members[0]}
  - kind: mitigation
{extra_report}output: {output}
"""
    path = root / f"{output}.yaml"
    path.write_text(text)
    return load_config(path)


def test_audit_runs_everything_and_a_rerun_resumes(small_world):
    root, members = small_world
    cfg = _config(root, members)
    first = run_audit(cfg, progress=False)
    assert first.resumed == []
    assert first.attack.is_file() and (first.attack.parent / "scores.csv").is_file()
    assert [v.name for v in first.verifications] == ["verification.json"]
    assert sorted(p.name for p in first.reports) == sorted(
        ["audit.pdf", f"takedown-{_safe_stem(members[0])}.pdf", "mitigation-defense-0.pdf"])
    assert all(p.read_bytes().startswith(b"%PDF") for p in first.reports)
    results = first.attack.read_bytes()
    state = json.loads((cfg.output / "state.json").read_text())
    assert set(state["steps"]) >= {"attack", "defense-0-redact"}

    second = run_audit(cfg, progress=False)
    assert set(second.resumed) == {"attack", "defense-0-redact"} | {f"report-{p.stem}" for p in first.reports}
    assert second.attack.read_bytes() == results

    # A new report reruns only that report.
    cfg3 = _config(root, members, extra_report="  - kind: takedown\n    person: " + members[1] + "\n")
    third = run_audit(cfg3, progress=False)
    assert "attack" in third.resumed and "defense-0-redact" in third.resumed
    assert f"report-takedown-{_safe_stem(members[1])}" not in third.resumed


def test_an_interrupted_audit_resumes_from_what_is_on_disk(small_world, monkeypatch):
    root, members = small_world
    cfg = _config(root, members, output="interrupted")
    from idia.defense import verify as verify_module

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(verify_module, "run_verification", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run_audit(cfg, progress=False)
    assert (cfg.output / "attack" / "results.json").is_file()
    assert not (cfg.output / "defense-0-redact" / "verification.json").exists()
    monkeypatch.undo()
    resumed = run_audit(cfg, progress=False)
    assert resumed.resumed == ["attack"]
    assert (cfg.output / "defense-0-redact" / "verification.json").is_file()
    verification = json.loads((cfg.output / "defense-0-redact" / "verification.json").read_text())
    assert [r["name"] for r in verification["redacted"]] == members[:2]


def test_cli_audit_reports_a_bad_key_with_its_line(tmp_path):
    bad = tmp_path / "audit.yaml"
    bad.write_text("model: world\npeople: people\nreprots: []\noutput: out\n")
    from click.testing import CliRunner

    from idia.compliance.cli import main
    from idia.compliance.config import TOP_KEYS
    result = CliRunner().invoke(main, ["audit", str(bad), "--quiet"])
    assert result.exit_code == 2
    assert result.output.strip().splitlines() == [f"idia: error: {bad}:3: unknown key 'reprots' (known: "
                                                  f"{', '.join(sorted(TOP_KEYS))})"]


ANNES = ["Anne-Marie Roux", "Anne Marie Roux", "Anne.Marie Roux"]


@pytest.fixture(scope="module")
def anne_audit(tmp_path_factory):
    """Three people whose names differ only in punctuation, each with their own photos, and a config for them."""
    root = tmp_path_factory.mktemp("annes")
    for i, name in enumerate(ANNES):
        for k in range(2):
            photo(root / "photos" / name / f"{k}.png", seed=10 * i + k, size=(64, 64))
    reports = "".join(f"  - kind: takedown\n    person: {json.dumps(n)}\n    include_photos: true\n" for n in ANNES)
    (root / "audit.yaml").write_text(f"model: world\npeople: photos\nn_candidates: 30\nreports:\n{reports}output: out\n")
    return root


@pytest.mark.slow
def test_takedown_reports_of_colliding_names_are_three_files_each_with_its_own_evidence(anne_audit):
    proc = run_idia("audit", "audit.yaml", "-q", cwd=anne_audit)
    assert proc.returncode == 0, proc.stderr
    out = anne_audit / "out"
    pdfs = sorted((out / "reports").glob("takedown-*.pdf"))
    assert len(pdfs) == 3 and len({p.name for p in pdfs}) == 3
    record = json.loads((out / "attack" / "results.json").read_text())
    from idia.compliance.pipeline import _safe_stem
    for name in ANNES:
        pdf = out / "reports" / f"takedown-{_safe_stem(name)}.pdf"
        text = " ".join(pdf_file_text(pdf).split())
        person = next(p for p in record["persons"] if p["name"] == name)
        assert name in text and all(other not in text for other in ANNES if other != name)
        assert all(im["sha256"] in text.replace(" ", "") or im["sha256"][:16] in text.replace(" ", "")
                   for im in person["images"])
    assert _safe_stem(ANNES[0]) == _safe_stem(unicodedata.normalize("NFD", ANNES[0]))  # stable


@pytest.mark.slow
def test_the_same_audit_resumes_from_another_directory_and_finds_its_photos(anne_audit, tmp_path):
    from idia.compliance.config import load_config
    from idia.compliance.pipeline import run_audit
    first = run_idia("audit", "audit.yaml", "-q", cwd=anne_audit)
    assert first.returncode == 0, first.stderr
    elsewhere = tmp_path / "somewhere" / "else"
    elsewhere.mkdir(parents=True)
    cfg_path = os.path.relpath(anne_audit / "audit.yaml", elsewhere)
    old = os.getcwd()
    os.chdir(elsewhere)
    try:
        second = run_audit(load_config(cfg_path), progress=False)
    finally:
        os.chdir(old)
    assert set(second.resumed) == {"attack"} | {f"report-{p.stem}" for p in second.reports}
    state = json.loads((anne_audit / "out" / "state.json").read_text())
    for step in state["steps"].values():
        assert all(not Path(rel).is_absolute() for rel in step["outputs"])
    html = next((anne_audit / "out" / "reports").glob("takedown-*.html")).read_text()
    assert html.count("data:image/png;base64,") >= 2 and "not found where the record says" not in html


@pytest.mark.slow
def test_a_damaged_step_output_is_made_again(anne_audit):
    from idia.compliance.config import load_config
    from idia.compliance.pipeline import run_audit
    cfg = load_config(anne_audit / "audit.yaml")
    run_audit(cfg, progress=False)
    results = anne_audit / "out" / "attack" / "results.json"
    whole = results.read_bytes()
    results.write_bytes(whole[: len(whole) // 2])  # truncated, as by a full disk or a careless copy
    again = run_audit(cfg, progress=False)
    assert "attack" not in again.resumed
    assert json.loads(results.read_text())["persons"] == json.loads(whole)["persons"]
    assert "attack" in run_audit(cfg, progress=False).resumed
