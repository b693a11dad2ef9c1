"""Can the face side be sharpened? Statistics measured on the namesakes audit of `bench/namesakes.py` (issue 18).

At 10,000 people (the world's 200 beside 9,800 namesake strangers with 1 to 3 photos) the default audit (name-and-
face, BH at q 0.05) flags nobody: the face side's p-values of members are not small enough. This bench asks
whether another face-side statistic would make them so, keeping the face side's null (every statistic below is
the same function of each face, so a person the model does not know is exchangeable with the faces of the bank).
Each row: the members' median face p-value, the strangers' share at or below 0.01 (validity: about 0.01), the
members at or below 0.01 by the larger of name and face p-values, and what BH at q 0.05 flags with that larger one.
The p-values here are the full-bank ranks (no sequential stopping), so the "raw" row is today's face side.

    .venv/bin/python bench/face_side_statistics.py [--out bench/out/namesakes]   (after bench/namesakes.py)
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy.special import logsumexp

from idia.attack.decide.fdr import benjamini_hochberg


def capture(out: Path) -> dict:
    """The arrays the decide stage works on, from one default audit of the namesakes (caches reused)."""
    import idia.attack.decide.decision as decision
    from idia.attack.run import run_attack
    from idia.attack.settings import AttackSettings
    from idia.world import shipped_model_dir
    audit = next(out.glob("namesakes-*"))
    seen: dict = {}
    real_refine, real_decide = decision.refine, decision.decide

    def refine(blocks, image_emb, owner, name_text, *args, **kw):
        seen.update(image_emb=np.asarray(image_emb, np.float64), owner=np.asarray(owner), name=np.asarray(name_text))
        return real_refine(blocks, image_emb, owner, name_text, *args, **kw)

    def decide(settings, chosen, question, image_emb, owner, texts, logit_scale, *args, **kw):
        seen.update(distractors=np.asarray(texts[0], np.float64).mean(axis=0), scale=float(logit_scale))
        return real_decide(settings, chosen, question, image_emb, owner, texts, logit_scale, *args, **kw)

    decision.refine = refine
    import idia.attack.run as run_module
    run_module.decide = decide
    try:
        run = run_attack(AttackSettings(model=str(shipped_model_dir()), people=audit / "people",
                                        labels=audit / "labels.json", cache_dir=out / "cache", progress=False))
    finally:
        decision.refine, run_module.decide = real_refine, real_decide
    persons = run.result.persons
    strata = json.loads((audit / "strata.json").read_text())
    seen.update(member=np.array([bool(p.label) for p in persons]),
                stranger=np.array([p.name in strata for p in persons]),
                name_p=np.array([p.evidence["permutation"]["p_value"] for p in persons]))
    return seen


def face_p(stat, owner, n: int, k_max: int) -> np.ndarray:
    """Each person's rank of stat(own first k photos) among stat(first k photos of everyone else with k)."""
    counts = np.bincount(owner, minlength=n)
    start = np.searchsorted(owner, np.arange(n))
    k_all = np.minimum(counts, k_max)
    p = np.ones(n)
    for k in range(1, k_max + 1):
        who, bank = np.flatnonzero(k_all == k), np.flatnonzero(counts >= k)
        faces = start[bank][:, None] + np.arange(k)
        for c in range(0, len(who), 500):
            people = who[c:c + 500]
            scores = stat(people, faces)
            own = np.array([stat(np.array([i]), start[i] + np.arange(k)[None, :])[0, 0] for i in people])
            beaten = (scores >= own[:, None]) & (bank[None, :] != people[:, None])
            p[people] = (1 + beaten.sum(axis=1)) / len(bank)
    return p


def statistics(a: dict) -> dict:
    """name -> stat(people, photo index blocks [faces, k]) -> [people, faces]: the name's score on each face."""
    E, T = a["image_emb"], a["name"]
    per_photo = E @ a["distractors"].T
    mu, sd = per_photo.mean(axis=1), per_photo.std(axis=1)
    lse = logsumexp(a["scale"] * per_photo, axis=1)
    centre, cov = E.mean(axis=0), np.cov(E.T)
    whiten = T @ np.linalg.inv(cov + 0.1 * np.trace(cov) / len(cov) * np.eye(len(cov)))

    def raw(people, faces):
        return T[people] @ E[faces].mean(axis=1).T

    def z(people, faces):
        s = np.einsum("nd,fkd->nfk", T[people], E[faces])
        return ((s - mu[faces]) / sd[faces]).mean(axis=2)

    def log_prob(people, faces):
        s = a["scale"] * np.einsum("nd,fkd->nfk", T[people], E[faces])
        return (s - np.logaddexp(s, lse[faces])).mean(axis=2)

    def whitened(people, faces):
        return whiten[people] @ (E[faces].mean(axis=1) - centre).T

    return {"raw (today's face side)": raw, "standardised over the 999 distractors": z,
            "log-probability against the 999 distractors": log_prob, "whitened embeddings": whitened}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", type=Path, default=Path(__file__).parent / "out" / "namesakes")
    args = ap.parse_args(argv)
    a = capture(args.out)
    n, member, stranger = len(a["name"]), a["member"], a["stranger"]
    rows = {}
    for k in (1, 2, 3):
        for label, stat in statistics(a).items():
            if k != 3 and not label.startswith("raw"):
                continue
            p = face_p(stat, a["owner"], n, k)
            both = np.maximum(p, a["name_p"])
            flagged = benjamini_hochberg(both, 0.05)[0]
            rows[f"{label}, {k} photos a face"] = row = {
                "members_median_face_p": float(np.median(p[member])),
                "strangers_face_p_at_0.01": float(np.mean(p[stranger] <= 0.01)),
                "members_at_0.01_by_name_and_face": float(np.mean(both[member] <= 0.01)),
                "bh_flagged": int(flagged.sum()), "bh_false": int((flagged & ~member).sum()),
                "bh_power": float(flagged[member].mean())}
            print(f"{label}, {k} photos a face: {json.dumps(row)}", flush=True)
    (args.out / "face_side_statistics.json").write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
