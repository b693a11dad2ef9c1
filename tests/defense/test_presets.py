"""The authors' published settings (--preset authors): what they are, and that they redact as published."""


import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from idia_testkit import world_attack, world_subset

from idia.defense.redact import PRESETS, NameRedactor
from idia.defense.training import drift_penalty, layernorm_parameter_names
from idia.defense.verify import VerifyConfig, verify
from idia.errors import InputError


@given(st.lists(st.lists(st.floats(-3, 3), min_size=1, max_size=6), min_size=1, max_size=4))
@settings(max_examples=40, deadline=None)
def test_the_authors_drift_is_the_sum_of_unsquared_norms(rows):
    params = [torch.tensor(r, dtype=torch.float64) for r in rows]
    anchors = [torch.zeros_like(p) for p in params]
    slow = sum(sum(x * x for x in r) ** 0.5 for r in rows)
    assert float(drift_penalty(params, anchors, "norm")) == pytest.approx(slow, rel=1e-9, abs=1e-12)
    assert float(drift_penalty(params, anchors, "squared")) == pytest.approx(sum(x * x for r in rows for x in r),
                                                                            rel=1e-9, abs=1e-12)


def test_the_authors_preset_has_the_published_settings():
    r = NameRedactor.from_preset("authors", seed=3)
    assert (r.neutral, r.lr, r.steps, r.redaction_weight, r.drift_norm, r.freeze_layernorm, r.seed) == \
        ("human", 1e-4, 400, 0.6, "norm", True, 3)
    assert [round(m * r.steps) for m in r.lr_milestones] == [200, 300]
    assert PRESETS["authors"]["drift_weight"] == 0.01
    with pytest.raises(InputError, match="--preset"):
        NameRedactor.from_preset("ours")


@pytest.mark.slow
def test_the_authors_preset_redacts_and_keeps_layernorms(world_model, world_model_dir, world_photos, redact_names,
                                                         redacted_names, tmp_path):
    """The published settings train for 400 steps whatever is audited; the attacks before and after ask the
    redacted people and 40 others (the claim is about the redacted)."""
    few = world_subset(world_photos, tmp_path / "few", 50, include=redacted_names)
    cfg = VerifyConfig(attack=world_attack(world_model_dir, few), names=redact_names, preset="authors",
                       probes=False)
    v = verify(cfg, loaded=world_model)
    s = v.record["summary"]
    print("\nauthors preset", {g: (s[g]["identified_before"], s[g]["identified_after"], s[g]["n"])
                               for g in ("redacted", "neighbours", "collateral")})
    assert v.record["defense"]["settings"]["neutral"] == "human"
    assert s["redacted"]["identified_after"] <= 2
    frozen = set(layernorm_parameter_names(world_model.model))
    student = dict(v.defense.student_.named_parameters())
    for name, p in world_model.model.named_parameters():
        if name in frozen and not name.startswith("visual."):
            assert torch.equal(p, student[name]), name
