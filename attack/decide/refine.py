"""After the first pass: p-values made fine where the level needs it, the face side, and what the audit as a whole
says (q-values, expected false discoveries, how many people the model knows, how the other rules would have
decided, near-identical names among the flagged).

`refine` updates each person's evidence block in place: `permutation` gains the sequential p-value and how many
distractors it took (`drawn`), and a `face` block is added. The arithmetic lives in `sequential`, `faces`,
`permutation.extend_name_side`, `fdr` and `competition`; this module only wires them to the decide stage.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from idia.attack.decide.faces import FaceSide, face_side
from idia.attack.decide.fdr import fdr_summary, q_values
from idia.attack.decide.levels import FACE_GROUP, FDR_GROUP, Level
from idia.attack.decide.permutation import extend_name_side
from idia.attack.decide.sequential import H_EXCEEDANCES, smallest_reachable_p


@dataclass
class Refined:
    name_p: np.ndarray  # the name side (sequential where extended; aliases: their exact max-statistic p)
    face: FaceSide
    n_max_distractors: int  # the most distractors any person could be ranked among
    bank_needed: int  # the face bank the level asked for

    @property
    def face_p(self) -> np.ndarray:
        return self.face.p_value

    def smallest_p(self) -> float:
        """The smallest p-value this setting can reach for anyone: the name side's floor 1/(n_max + 1) or the face
        side's 1/(bank + 1), whichever is larger (the rule takes the larger p-value)."""
        return max(smallest_reachable_p(self.n_max_distractors),
                   smallest_reachable_p(int(self.face.bank.max(initial=0))))

    def describe(self, further=None) -> dict:
        return {"method": "Besag-Clifford sequential p-values", "h": H_EXCEEDANCES,
                "max_distractors": self.n_max_distractors, "face_bank_needed": self.bank_needed,
                "smallest_p": self.smallest_p(),
                "further_distractors": further.describe() if further is not None else []}


def person_image_means(image_emb: np.ndarray, owner: np.ndarray, n_people: int) -> np.ndarray:
    """[n_people, d] the mean of each person's photo embeddings."""
    sums = np.zeros((n_people, image_emb.shape[1]))
    np.add.at(sums, np.asarray(owner, np.int64), image_emb.astype(np.float64))
    counts = np.bincount(owner, minlength=n_people)
    return sums / np.maximum(counts, 1)[:, None]


def refine(blocks: list[dict], image_emb, owner, name_text, group_of, level: Level, max_distractors: int,
           further=None, seed: int = 0) -> Refined:
    """The name side extended sequentially up to the level's need (never past `max_distractors`), the face side
    against everyone else's photos; both written into the evidence blocks."""
    n = len(blocks)
    images = person_image_means(image_emb, owner, n)
    exceed = np.array([b["permutation"]["rank"] - 1 for b in blocks], dtype=np.int64)
    n_first = np.array([b["permutation"]["n_distractors"] for b in blocks], dtype=np.int64)
    aliased = np.array([b["aliases"] is not None for b in blocks], dtype=bool)
    n_max = min(int(max_distractors), max(int(n_first.max(initial=0)), level.draws_needed(FDR_GROUP)))
    if further is None:  # nothing to extend with: the first pass's distractors are all there are
        n_max = int(n_first.max(initial=0))
    name_p = np.array([b["aliases"]["p_value"] if b["aliases"] else b["permutation"]["p_value"] for b in blocks],
                      dtype=np.float64)
    drawn, exceeded = n_first.copy(), exceed.copy()
    if further is not None and n_max > int(n_first.max(initial=0)) and n:
        cap = np.minimum(n_max, n_first + _supply(further, group_of, n))  # the lists may run out first
        n_max = int(cap.max())
        state = extend_name_side(exceed, n_first, name_text, images, group_of, further,
                                 np.where(aliased, n_first, cap))
        name_p = np.where(aliased, name_p, state.p_values())
        drawn, exceeded = state.drawn_, state.exceed_
    bank_needed = level.draws_needed(FACE_GROUP)
    face = face_side(name_text, image_emb, owner, bank_needed, seed=seed)
    alpha = level.per_person_alpha
    for i, b in enumerate(blocks):
        perm = b["permutation"]
        if drawn[i] > perm["n_distractors"]:
            perm.update(p_value=round(float(name_p[i]), 10), flagged=bool(name_p[i] <= alpha))
        perm["drawn"], perm["exceedances"] = int(drawn[i]), int(exceeded[i])
        b["face"] = {**face.block(i), "alpha": alpha, "flagged": bool(face.p_value[i] <= alpha)}
    return Refined(name_p, face, n_max, bank_needed)


def _supply(further, group_of, n: int) -> np.ndarray:
    """[n] how many further distractors each person's group can draw (the balanced draw of the bundled lists
    stops at twice its female first names' combinations: 81,402 beside the first 999)."""
    groups = np.zeros(n, np.int64) if group_of is None else np.asarray(group_of, dtype=np.int64)
    sizes = {int(g): len(further.names(int(g))) for g in np.unique(groups)}
    return np.array([sizes[int(g)] for g in groups], dtype=np.int64)


def summarise(p, member, threshold: float | None, level: Level, is_reference) -> tuple[dict, np.ndarray]:
    """(results.json's `fdr` block, q-values of the audited people): over the audited people only."""
    audited = ~np.asarray(is_reference, dtype=bool)
    p_a = np.asarray(p, dtype=np.float64)[audited]
    q = q_values(p_a)
    flagged = np.asarray(member, dtype=bool)[audited]
    if threshold is None:  # a rule with its own threshold (paper, calibrated): the largest p-value it flagged
        threshold = float(p_a[flagged].max()) if flagged.any() else 0.0
    return fdr_summary(p_a, flagged, threshold, level.describe()), q


def fdr_power_note(level: Level, p, flagged, is_reference, refined: Refined) -> str | None:
    """Why an FDR audit flagged nobody when some people stand out on their own: the smallest p-value the median one
    of them could get (the name side's 1/(n + 1) or their face bank's 1/(bank + 1), the larger) against what BH
    needs (k q / m for the k smallest). None when someone was flagged or nobody reaches alpha alone."""
    audited = ~np.asarray(is_reference, dtype=bool)
    p = np.asarray(p, dtype=np.float64)
    alpha = level.per_person_alpha
    alone = np.flatnonzero(audited & (p <= alpha))
    if level.kind != "fdr" or np.asarray(flagged, dtype=bool)[audited].any() or not len(alone):
        return None
    floors = np.maximum(smallest_reachable_p(refined.n_max_distractors), 1.0 / (refined.face.bank[alone] + 1))
    typical = int(np.argsort(floors, kind="stable")[len(floors) // 2])  # the median person's floor
    m, floor, bank = int(audited.sum()), float(floors[typical]), int(refined.face.bank[alone][typical])
    need = math.ceil(floor * m / level.q - 1e-9)
    return (f"nobody is flagged at a false-discovery rate of {level.q} among {m} people, though {len(alone)} have "
            f"p <= {alpha} on their own: BH flags the k smallest p-values only when the k-th is at most k x {level.q} "
            f"/ {m}, and the smallest p-value most of those people could get is {floor:.2g} (the larger of the name "
            f"side's floor and the face side's, which ranks each name among {bank} other people's photos), so at "
            f"least {need} people would have to reach it together. With --alpha {alpha} each person is judged alone: "
            f"{len(alone)} flagged, of whom up to {m * alpha:.0f} could be chance; more photos per person (the face "
            "side compares photo means) or more people make the face side finer")


def agreement(candidates: dict[str, tuple[np.ndarray, str]], decided_by: str, is_reference) -> dict:
    """How every other rule would have decided the audited people, against the rule that decided:
    candidates {rule: (flagged [n_people], level in words)}."""
    audited = ~np.asarray(is_reference, dtype=bool)
    decided = candidates[decided_by][0][audited]
    rows = []
    for name, (flagged, level) in candidates.items():
        f = np.asarray(flagged, dtype=bool)[audited]
        rows.append({"rule": name, "level": level, "flagged": int(f.sum()), "same_verdict": int((f == decided).sum()),
                     "flagged_here_only": int((f & ~decided).sum()),
                     "flagged_by_decision_only": int((decided & ~f).sum()), "deciding": name == decided_by})
    return {"decided_by": decided_by, "n": int(audited.sum()), "rules": rows}


def namesakes(flagged, image_scores, owner, true_index, name_of, candidate_text, name_text, image_emb) -> list[dict]:
    """Flagged people grouped with near-identical names (`competition.namesake_groups`): each flagged person's
    `COMPARED_CANDIDATES` strongest candidates are compared with their name. candidate_text(person, index) gives a
    candidate's prompt-averaged embedding."""
    from idia.attack.decide.competition import COMPARED_CANDIDATES, namesake_groups
    from idia.attack.decide.permutation import person_candidate_scores
    who = np.flatnonzero(flagged)
    if not len(who):
        return []
    owner = np.asarray(owner, dtype=np.int64)
    rows = np.isin(owner, who)
    local = np.searchsorted(who, owner[rows])
    scores = person_candidate_scores(np.asarray(image_scores)[rows], local, len(who))
    scores[np.arange(len(who)), np.asarray(true_index)[who]] = -np.inf
    top = np.argsort(-scores, axis=1, kind="stable")[:, :min(COMPARED_CANDIDATES, scores.shape[1] - 1)]
    candidates = [[(name_of(int(i), int(c)), candidate_text(int(i), int(c))) for c in top[r]]
                  for r, i in enumerate(who)]
    images = person_image_means(image_emb, owner, int(owner.max()) + 1)[who]
    return namesake_groups([name_of(int(i), int(true_index[i])) for i in who], candidates, name_text[who], images)
