"""Text-tower name redaction on the synthetic world: the redacted names go, their namesakes and everyone else
stay, utility holds, and the verification record and the defended model are whole and deterministic."""

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from idia.attack.model.formats.openclip_hub import HUB_WEIGHTS
from idia.attack.model.load import load_clip
from idia.attack.record.results import AttackResult
from idia.attack.run import run_attack
from idia.attack.settings import AttackSettings
from idia.compliance.cli import main
from idia.compliance.report.schema import VERIFICATION_RECORD, check_record
from idia.defense.redact import NameRedactor, read_redaction_names
from idia.defense.training import encode_text_features
from idia.errors import InputError
from idia.io import sha256_file
from idia.world import load_world

N_REDACT = 10


def test_redacting_ten_members_meets_the_targets(redaction, redacted_names):
    v, _, record = redaction
    s = record["summary"]
    print("\nredacted", redacted_names)
    for group in ("redacted", "neighbours", "collateral"):
        print(group, s[group])
    print("utility", s["utility"], "training seconds", record["defense"]["record"]["seconds"])
    assert s["redacted"]["n"] == N_REDACT and s["redacted"]["identified_before"] == N_REDACT
    assert s["redacted"]["rate_after"] <= 0.10
    # Every other member (neighbours and the rest) together loses at most 5 points; the rest alone too.
    others_before = s["neighbours"]["identified_before"] + s["collateral"]["identified_before"]
    others_after = s["neighbours"]["identified_after"] + s["collateral"]["identified_after"]
    n_others = s["neighbours"]["n"] + s["collateral"]["n"]
    assert (others_before - others_after) / n_others <= 0.05
    assert s["collateral"]["rate_before"] - s["collateral"]["rate_after"] <= 0.05
    assert s["utility"]["top1_before"] - s["utility"]["top1_after"] <= 0.02
    # Non-members do not start being identified either.
    nonmembers = [p for p in v.after.result.persons if p.label is False]
    assert sum(p.member for p in nonmembers) <= sum(p.member for p in v.before.result.persons if p.label is False) + 1


def test_redaction_also_holds_under_the_calibrated_rule(redaction, world_model, world_model_dir, world_photos,
                                                        redacted_names):
    """The demo decides by the continuous score calibrated on reference people: the redaction must hold there too."""
    v, _, _ = redaction
    cfg = AttackSettings(model=str(world_model_dir), people=world_photos / "people",
                       labels=world_photos / "labels.json",
                       reference=world_photos / "reference", target_fpr=0.05, progress=False, command="pytest")
    before = {p.name: p for p in run_attack(cfg, loaded=world_model).result.persons}
    after = {p.name: p for p in run_attack(cfg, loaded=v.defense.defended()).result.persons}
    others = [n for n, p in before.items() if p.label and n not in redacted_names]
    red = [sum(d[n].member for n in redacted_names) for d in (before, after)]
    oth = [sum(d[n].member for n in others) for d in (before, after)]
    print(f"\ncalibrated (5% FPR): redacted {red[0]} -> {red[1]} of {len(redacted_names)}, other members "
          f"{oth[0]} -> {oth[1]} of {len(others)}")
    assert red[0] >= 9 and red[1] <= 1
    assert (oth[0] - oth[1]) / len(others) <= 0.05


def test_name_neighbours_survive_and_are_reported_apart(redaction, redacted_names):
    _, _, record = redaction
    neighbours = record["neighbours"]
    assert len(neighbours) >= 3  # the selection makes sure there are some to measure
    for nb in neighbours:
        assert nb["name"] not in redacted_names and nb["with"] in redacted_names
        assert nb["shares"] in ("first", "last")
        first, last = nb["name"].split()[0], nb["name"].split()[-1]
        other = nb["with"].split()
        assert (first == other[0]) if nb["shares"] == "first" else (last == other[-1])
    kept = [nb for nb in neighbours if nb["before"]["member"]]
    assert kept, "no identified neighbour to measure"
    assert sum(nb["after"]["member"] for nb in kept) >= len(kept) - 1
    collateral = {c["name"] for c in record["collateral"]}
    assert not collateral & {nb["name"] for nb in neighbours} and not collateral & set(redacted_names)


def test_verification_json_has_the_agreed_shape(redaction, world_model):
    v, out, record = redaction
    assert set(record) == {"kind", "schema_version", "manifest", "defense", "decision", "redacted", "neighbours",
                           "collateral", "nonmembers", "summary", "photos", "probes", "relearning", "probes_not_run",
                           "verdict", "sweep", "attack_before", "attack_after", "attack_after_recalibrated", "rule"}
    assert record["kind"] == "idia-verification" and record["schema_version"] == 3
    # The paper rule's boundary is tau, the same before and after: one attack after, judged at it.
    assert record["decision"]["before"]["boundary"] == record["decision"]["after_recalibrated"]["boundary"] == {"tau": 1}
    assert record["attack_after_recalibrated"] is None
    assert record["probes_not_run"] == [{"probe": "relearning", "why": "no relearning step counts given (--relearn '')"}]
    assert set(record["verdict"]["probes_run"]) == {"unseen-photos", "heldout", "variant:first", "variant:last",
                                                    "variant:initials"}
    assert record["photos"] is None and record["relearning"] is None  # a text redaction attacks every photo
    assert record["sweep"] is None
    d = record["defense"]
    assert d["kind"] == "redact" and d["variant"] == "text" and d["settings"]["steps"] == len(d["record"]["losses"])
    assert d["tuning"] is None  # only the image redaction's defaults were chosen on world seeds
    check_record(record, VERIFICATION_RECORD, "mitigation", out)  # it holds together, as every reader checks
    assert set(d["record"]) == {"losses", "checkpoint_sha256_before", "checkpoint_sha256_after", "seconds"}
    for row in d["record"]["losses"]:
        assert set(row) == {"step", "total", "redaction", "utility", "drift"} and isinstance(row["step"], int)
    losses = d["record"]["losses"]
    assert np.mean([r["redaction"] for r in losses[-20:]]) < 0.5 * losses[0]["redaction"]  # it learned
    assert d["record"]["checkpoint_sha256_before"] == world_model.checkpoint_sha256
    assert d["record"]["checkpoint_sha256_after"] == sha256_file(out / "defended-model" / HUB_WEIGHTS[0])
    inputs = record["manifest"]["inputs"]
    assert inputs["checkpoint_sha256_before"] == d["record"]["checkpoint_sha256_before"]
    assert inputs["checkpoint_sha256_after"] == d["record"]["checkpoint_sha256_after"]
    assert record["summary"]["nonmembers"]["n"] == 100
    for group in ("redacted", "neighbours", "collateral", "nonmembers"):
        assert set(record["summary"][group]) == {"n", "identified_before", "identified_after", "rate_before",
                                                 "rate_after", "newly_identified", "identified_after_recalibrated"}
        for row in record[group]:
            assert row["after_recalibrated"]["member"] == row["after"]["member"]
            for when in ("before", "after"):
                p = row[when]
                assert set(p) == {"score", "member", "p_value", "mean_log_prob"}
                assert isinstance(p["score"], int) and isinstance(p["member"], bool)
                assert isinstance(p["p_value"], float) and isinstance(p["mean_log_prob"], float)
    u = record["summary"]["utility"]
    assert set(u) == {"task", "n_images", "n_classes", "top1_before", "top1_after", "top1_before_ci95",
                      "top1_after_ci95", "change", "change_ci95", "images_lost", "images_gained", "ci_method"}
    assert u["n_classes"] == 36 and u["n_images"] == 360
    assert u["change_ci95"][0] <= u["change"] == u["top1_after"] - u["top1_before"] <= u["change_ci95"][1]
    assert u["top1_before_ci95"][0] < u["top1_before"] < u["top1_before_ci95"][1]
    before = AttackResult.load(out / record["attack_before"])
    after = AttackResult.load(out / record["attack_after"])
    assert before.model["checkpoint_sha256"] == d["record"]["checkpoint_sha256_before"]
    assert after.model["checkpoint_sha256"] == d["record"]["checkpoint_sha256_after"]
    row = record["redacted"][0]
    assert row["before"]["score"] == before.person(row["name"]).score
    assert row["after"]["score"] == after.person(row["name"]).score


def test_defended_checkpoint_reloads_with_the_same_embeddings(redaction, world_model):
    v, out, record = redaction
    reloaded = load_clip(str(out / "defended-model"))
    assert reloaded.checkpoint_sha256 == record["defense"]["record"]["checkpoint_sha256_after"]
    saved = json.loads((out / "defended-model" / "redaction.json").read_text(encoding="utf-8"))
    assert saved["checkpoint_sha256_after"] == reloaded.checkpoint_sha256
    assert saved["names"] == record["manifest"]["inputs"]["names"]["names"]
    student = v.defense.student_
    captions = ["a photo of " + v.defense.names_[0], "a red circle", "a person named Kojo Lau", "a photo of a person"]
    tokens = world_model.tokenizer(captions)
    with torch.no_grad():
        diff = (reloaded.model.encode_text(tokens) - student.encode_text(tokens)).abs().max().item()
        assert diff < 1e-6
        assert not torch.allclose(world_model.model.encode_text(tokens), student.encode_text(tokens), atol=1e-3)
    # Every fine-tuned tensor is written back, the positional embedding too; the image tower is untouched.
    original = world_model.model.state_dict()
    state = reloaded.model.state_dict()
    for name, tensor in student.state_dict().items():
        assert torch.equal(state[name], tensor.float()), name
    assert not torch.equal(state["positional_embedding"], original["positional_embedding"].float())
    assert all(torch.equal(state[k], original[k].float()) for k in original if k.startswith("visual."))


@pytest.mark.slow
def test_redaction_is_deterministic_given_a_seed(world_model):
    def run(seed):
        r = NameRedactor(steps=3, batch_clean=16, batch_names=16, seed=seed, progress=False)
        return r.fit(world_model, ["Kojo Huang"], keep_names=[])
    a, b, c = run(1), run(1), run(2)
    assert a.losses_ == b.losses_ and a.checkpoint_sha256_after_ == b.checkpoint_sha256_after_
    assert a.losses_ != c.losses_
    assert a.checkpoint_sha256_before_ == world_model.checkpoint_sha256 != a.checkpoint_sha256_after_
    # The teacher is left as it was.
    tokens = world_model.tokenizer(["a photo of Kojo Huang"])
    with torch.no_grad():
        teacher, student = encode_text_features(world_model.model, tokens), encode_text_features(a.student_, tokens)
        assert not torch.equal(teacher, student)


def test_empty_names_file_is_a_one_line_input_error(tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody\n\n", encoding="utf-8")
    with pytest.raises(InputError, match="empty.txt: holds no names"):
        read_redaction_names(empty)
    result = CliRunner().invoke(main, ["defend", "redact", "--model", "world", "--names", str(empty),
                                       "--out", str(tmp_path / "out"), "--quiet"])
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "empty.txt: holds no names to redact" in result.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_a_name_nobody_knows_gets_a_warning(world_model, world_model_dir):
    known = [p.name for p in load_world(world_model_dir).identities]
    with pytest.warns(UserWarning, match="Zyxwv Qopnm.*check the spelling"):
        r = NameRedactor(steps=1, batch_clean=8, batch_names=8, progress=False)
        r.fit(world_model, ["Zyxwv Qopnm"], keep_names=known)
    assert len(r.warnings_) == 1
    notes = []
    NameRedactor(steps=1, batch_clean=8, batch_names=8, progress=False).fit(
        world_model, [known[0]], keep_names=known, warn=notes.append)
    assert notes == []


def test_redact_command_writes_a_loadable_model_and_its_record(tmp_path, names_file, world_model_dir):
    out = tmp_path / "defended"
    keep = tmp_path / "keep.txt"  # the people the redaction must spare: the world's, as the demo passes them
    keep.write_text("\n".join(p.name for p in load_world(world_model_dir).identities) + "\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["defend", "redact", "--model", "world", "--names", str(names_file),
                                       "--keep-names", str(keep), "--steps", "2", "--out", str(out), "--quiet"])
    assert result.exit_code == 0, result.output
    record = json.loads((out / "redaction.json").read_text(encoding="utf-8"))
    assert record["kind"] == "idia-redaction" and len(record["losses"]) == 2 and record["hyperparameters"]["steps"] == 2
    assert record["names"] == read_redaction_names(names_file)
    assert load_clip(str(out)).checkpoint_sha256 == record["checkpoint_sha256_after"]
    assert {n["shares"] for n in record["neighbours"]} == {"first", "last"}


# --- perturbation ------------------------------------------------------------------------------------------------
