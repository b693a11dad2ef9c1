"""Evidence that holds for real names, measured on the world's namesakes (`world.namesakes`): 2,400 people the
model never saw, 1 to 3 photos each, whose first and last names are members' (800 a member's first name, 800 a
member's last name, 800 both), audited beside the world's 100 members and 100 non-members (10 photos each).

The strangers are stored as what the encoder made of them (tests/world/data/namesakes.npz, float16; rebuilt by
`python -m idia.world.namesakes --out tests/world/data/namesakes.npz`, checked here against fresh renders), so
the real decide stage runs on all of them without rendering 4,900 photos."""

from pathlib import Path

import numpy as np
import pytest

from idia.attack.decide.decision import Names, decide
from idia.attack.decide.per_person import own_name_similarity
from idia.attack.decide.rules import choose_rule
from idia.attack.encode.encoder import Encoder
from idia.attack.inputs.prompts import PAPER_TEMPLATES
from idia.attack.inputs.question import ask
from idia.attack.settings import AttackSettings
from idia.world import load_world
from idia.world.namesakes import make_strangers, stranger_photo

STORED = Path(__file__).parent / "data" / "namesakes.npz"
ALPHA = 0.01
N_CANDIDATES = 500  # half the paper's list, half the text to encode; the bias is the same (bench/namesakes.py)


def margin(rate: float, n: int) -> float:
    """Three binomial standard errors: a flagged share above rate + margin is not chance (p < 0.0015)."""
    return 3 * np.sqrt(rate * (1 - rate) / n)


@pytest.fixture(scope="module")
def audit(world_model):
    """The 2,400 namesakes audited together, per person at alpha = 0.01, with the default rule, each among their
    own name and 499 made-up ones."""
    data = np.load(STORED)
    names = [str(n) for n in data["names"]]
    question = ask(names, N_CANDIDATES, "per-person", seed=0)
    encoder = Encoder(world_model, device="cpu", progress=False)
    texts = [encoder.prompt_embeddings(list(PAPER_TEMPLATES), g.names) for g in question.groups]
    settings = AttackSettings(model="world", people=STORED, alpha=ALPHA, progress=False)
    return decide(settings, choose_rule(settings, False), question, data["image_emb"].astype(np.float32),
                  data["owner"], texts, world_model.logit_scale, np.zeros(len(names), bool), [False] * len(names),
                  own_similarity=data["own_similarity"].astype(np.float32),
                  names=Names(data["name_means"].astype(np.float32)))


@pytest.mark.slow
def test_the_namesakes_break_the_name_side_and_the_default_rule_holds(audit):
    """The failure of issue 18, reproduced, and the fix measured on the same 2,400 people."""
    n = len(audit.p_values)
    name_side = np.array([b["permutation"]["p_value"] for b in audit.evidence_blocks])
    assert (name_side <= 0.05).mean() > 0.05 + margin(0.05, n)  # today's test: the name among made-up names only
    assert (name_side <= 0.01).mean() > 0.01  # (1.75% here, 2.0% among 1,000 names: bench/namesakes.py)
    assert audit.rule["decided_by"] == "name-and-face" and audit.rule["alpha"] == ALPHA
    for level in (0.01, 0.05):  # the default rule: the larger of the name side and the face side
        assert (audit.p_values <= level).mean() <= level + margin(level, n)
    assert audit.member.mean() <= ALPHA + margin(ALPHA, n)


def test_the_stored_namesakes_are_what_the_encoder_makes_of_fresh_renders(world_model):
    data = np.load(STORED)
    world = load_world()
    strangers = make_strangers(world, len(data["names"]), seed=int(data["seed"]))[:6]
    assert [s.name for s in strangers] == list(data["names"][:6])
    rows = np.flatnonzero(data["owner"] < 6)
    encoder = Encoder(world_model, device="cpu", progress=False, use_cache=False)
    fresh = np.stack([np.asarray(world_model.preprocess(stranger_photo(world, s, k)).numpy())
                      for s in strangers for k in range(s.n_photos)])
    import torch
    with torch.no_grad():
        emb = torch.nn.functional.normalize(world_model.model.encode_image(torch.from_numpy(fresh)), dim=-1).numpy()
    np.testing.assert_allclose(emb, data["image_emb"][rows].astype(np.float32), atol=2e-3)
    own = own_name_similarity(encoder, list(PAPER_TEMPLATES), [s.name for s in strangers], emb, data["owner"][rows])
    np.testing.assert_allclose(own, data["own_similarity"][rows].astype(np.float32), atol=2e-3)
