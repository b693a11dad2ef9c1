"""The paper's central finding, reproduced on the world: identification grows with how often a person occurs in
the training data, and with how many photos the auditor has of them.

`idia world study --out DIR` renders fresh photos of the world's members and non-members, asks the shipped
model about every candidate (`world_scores`: the one place the encoder is called), and measures the share of
people flagged by the paper's rule (tau = 1) and by the candidate-permutation test (alpha = 0.01)
  - against occurrences in training (members: 5, 10, 25, 50; non-members: 0), at `images_per_person` photos;
  - against photos per person (1, 2, 5, 10, 20: the first k photos of each person; photos are independent
    renders, so the first k are a random sample), for members and non-members,
each with a Clopper-Pearson 95% interval. Writes study.json and study.png.
"""

from __future__ import annotations

import base64
import json
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idia.attack.decide.calibrate import clopper_pearson
from idia.attack.decide.permutation import PermutationTest, permutation_p_values, person_candidate_scores
from idia.io import atomic_write_bytes, atomic_write_json

PHOTO_COUNTS = (1, 2, 5, 10, 20)
STUDY_ALPHA = 0.01


@dataclass
class WorldScores:
    """Every candidate's score for every photo of the audited world people, and who is who."""

    image_scores: np.ndarray  # [n_images, C] mean over prompts of the log-softmax over candidates
    predictions: np.ndarray  # [n_images, P] argmax candidate per image and prompt
    owner: np.ndarray  # [n_images]
    photo_number: np.ndarray  # [n_images] k of the person's k-th photo (0-based, sorted by file name)
    true_index: np.ndarray  # [n_people]
    names: list[str]
    is_member: np.ndarray  # [n_people] bool
    n_train: np.ndarray  # [n_people] occurrences in training (0 for non-members)
    distractor_mask: np.ndarray  # [C] True for the made-up distractors (not an audited person's name)
    candidates: list[str]
    paper_score_full: np.ndarray  # [n_people] the attack's own paper score on all photos (cross-check)

    def subset(self, max_photos: int) -> "WorldScores":
        keep = self.photo_number < max_photos
        return WorldScores(self.image_scores[keep], self.predictions[keep], self.owner[keep],
                           self.photo_number[keep], self.true_index, self.names, self.is_member, self.n_train,
                           self.distractor_mask, self.candidates, self.paper_score_full)


def world_scores(people_dir: str | Path, model_dir: str | Path | None = None, n_candidates: int = 1000,
                 seed: int = 0, cache_dir: str | Path | None = None, progress: bool = False) -> WorldScores:
    """Encode the photos under `people_dir` (world.write_photos' people/) and score every candidate.

    The encoder calls live here and only here."""
    from idia.attack.decide.evidence import gather_evidence
    from idia.attack.encode.encoder import Encoder
    from idia.attack.inputs import prompts
    from idia.attack.inputs.distractors import build_candidates
    from idia.attack.inputs.people import scan_people
    from idia.attack.model.load import load_clip
    from idia.world import load_world, read_world_record, shipped_model_dir

    model_dir = Path(model_dir or shipped_model_dir())
    world = load_world(model_dir)
    record = read_world_record(model_dir)
    role = {p.name: p.role for p in world.identities}
    people = [p for p in scan_people(people_dir) if p.auditable]
    loaded = load_clip(str(model_dir))
    cand = build_candidates([p.name for p in people], n_candidates, seed)
    index = cand.index()
    templates = prompts.PAPER_TEMPLATES
    encoder = Encoder(loaded, device="cpu", cache_dir=cache_dir, progress=progress)
    text_emb = encoder.prompt_embeddings(templates, cand.names)
    paths = [ph.path for p in people for ph in p.photos]
    owner = np.array([i for i, p in enumerate(people) for _ in p.photos], dtype=np.int64)
    number = np.array([k for p in people for k in range(len(p.photos))], dtype=np.int64)
    image_emb = encoder.encode_photos(paths, [ph.sha256 for p in people for ph in p.photos])
    logit_scale = loaded.logit_scale
    true_index = np.array([index[p.name] for p in people], dtype=np.int64)
    ev = gather_evidence(image_emb, owner, true_index, text_emb, logit_scale)
    scores = ev.image_candidate_log_prob
    mask = np.ones(len(cand.names), dtype=bool)
    mask[true_index] = False
    train = record["train_images_per_member"]
    return WorldScores(image_scores=scores, predictions=ev.prediction, owner=owner, photo_number=number,
                       true_index=true_index, names=[p.name for p in people],
                       is_member=np.array([role[p.name] == "member" for p in people]),
                       n_train=np.array([train.get(p.name, 0) for p in people], dtype=np.int64),
                       distractor_mask=mask, candidates=cand.names, paper_score_full=ev.score)


def verdicts(ws: WorldScores, alpha: float = STUDY_ALPHA, tau: int = 1) -> dict:
    """Per person: the paper score and verdict, the permutation p-value and verdict."""
    from idia.attack.decide.evidence import majority_votes, paper_score
    n_people = len(ws.true_index)
    person_scores = person_candidate_scores(ws.image_scores, ws.owner, n_people)
    p = permutation_p_values(person_scores, ws.true_index, ws.distractor_mask)
    vote, _, tie = majority_votes(ws.owner, ws.predictions, n_people, ws.image_scores.shape[1])
    score = paper_score(vote, ws.true_index)
    return {"paper_score": score, "paper": score >= tau, "p_value": p,
            "permutation": PermutationTest(alpha).decide(p), "tie_share": tie.mean(axis=1)}


def _rate(flags: np.ndarray) -> dict:
    k, n = int(flags.sum()), int(len(flags))
    lo, hi = clopper_pearson(k, n)
    return {"k": k, "n": n, "rate": k / n if n else None, "ci95": [lo, hi]}


def run_study(out: str | Path, model_dir: str | Path | None = None, photo_counts=PHOTO_COUNTS,
              images_per_person: int = 10, alpha: float = STUDY_ALPHA, seed: int = 0,
              progress: bool = False, photos_dir: str | Path | None = None) -> dict:
    """Measure, write study.json and study.png into `out`, and return the record."""
    from idia.errors import InputError
    from idia.world import load_world, read_world_record, shipped_model_dir, write_photos
    if not 0 < alpha < 1:
        raise InputError(f"--alpha must lie strictly between 0 and 1, got {alpha}")
    if photos_dir is not None and not (Path(photos_dir) / "people").is_dir():
        raise InputError(f"{photos_dir}: no people/ folder here (write one with `idia world photos`)")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    model_dir = Path(model_dir or shipped_model_dir())
    n_photos = max(max(photo_counts), images_per_person)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(photos_dir) if photos_dir else Path(tmp)
        if photos_dir is None:
            write_photos(load_world(model_dir), root, n_photos, shapes_per_class=1)
        ws = world_scores(root / "people", model_dir, seed=seed, cache_dir=Path(tmp) / "cache", progress=progress)
    available = int(ws.photo_number.max()) + 1 if len(ws.photo_number) else 0
    counts = [k for k in photo_counts if k <= available]

    by_occ = []
    base = verdicts(ws.subset(images_per_person), alpha)
    for occ in sorted(set(ws.n_train.tolist())):
        sel = ws.n_train == occ
        by_occ.append({"occurrences": int(occ), "members": bool(occ > 0),
                       "paper": _rate(base["paper"][sel]), "permutation": _rate(base["permutation"][sel])})
    by_photos = []
    for k in counts:
        v = verdicts(ws.subset(k), alpha)
        row = {"photos": k}
        for group, sel in (("members", ws.is_member), ("nonmembers", ~ws.is_member)):
            row[group] = {"paper": _rate(v["paper"][sel]), "permutation": _rate(v["permutation"][sel]),
                          "tie_share": float(v["tie_share"][sel].mean())}
        by_photos.append(row)
    record = {
        "kind": "idia-world-study",
        "model_checkpoint_sha256": read_world_record(model_dir)["checkpoint_sha256"],
        "alpha": alpha, "tau": 1, "seed": seed, "images_per_person": images_per_person,
        "n_candidates": len(ws.candidates), "n_distractors": int(ws.distractor_mask.sum()),
        "n_members": int(ws.is_member.sum()), "n_nonmembers": int((~ws.is_member).sum()),
        "by_occurrences": by_occ, "by_photos": by_photos,
        "rules": {"paper": "score >= 1 of 21 prompts (per-prompt majority over the photos, ties give no vote)",
                  "permutation": f"candidate-permutation p-value <= {alpha}"},
        "intervals": "Clopper-Pearson 95%",
        "plot": "study.png",
    }
    png = study_plot(record)
    atomic_write_bytes(out / "study.png", png)
    atomic_write_json(out / "study.json", record)
    return record


def study_plot(record: dict) -> bytes:
    """Two panels: identification rate against occurrences in training, and against photos per person."""
    import io

    import matplotlib
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rc = {"font.family": "DejaVu Sans", "font.size": 8, "axes.spines.top": False, "axes.spines.right": False,
          "legend.frameon": False}
    styles = {"paper": ("#b03a2e", "o", "paper rule (tau = 1)"),
              "permutation": ("#2e6fb0", "s", f"permutation test (alpha = {record['alpha']})")}
    with matplotlib.rc_context(rc):
        fig = Figure(figsize=(6.8, 2.8), layout="constrained")
        FigureCanvasAgg(fig)
        ax1, ax2 = fig.subplots(1, 2)
        occ = record["by_occurrences"]
        x = [r["occurrences"] for r in occ]
        for rule, (colour, marker, label) in styles.items():
            y = [r[rule]["rate"] for r in occ]
            err = [[r[rule]["rate"] - r[rule]["ci95"][0] for r in occ], [r[rule]["ci95"][1] - r[rule]["rate"] for r in occ]]
            ax1.errorbar(x, y, yerr=err, color=colour, marker=marker, capsize=2, label=label, lw=1)
        ax1.set_xscale("symlog", linthresh=5)
        ax1.set_xticks(x, [str(v) for v in x])
        ax1.set_xlabel("occurrences in training (0 = non-members)")
        ax1.set_ylabel("share of people identified")
        ax1.set_ylim(-0.03, 1.03)
        ax1.set_title(f"{record['images_per_person']} photos per person")
        rows = record["by_photos"]
        xs = [r["photos"] for r in rows]
        for rule, (colour, marker, label) in styles.items():
            for group, ls in (("members", "-"), ("nonmembers", ":")):
                y = [r[group][rule]["rate"] for r in rows]
                lo = [r[group][rule]["ci95"][0] for r in rows]
                hi = [r[group][rule]["ci95"][1] for r in rows]
                ax2.plot(xs, y, color=colour, marker=marker, ls=ls, lw=1,
                         label=f"{'members' if group == 'members' else 'non-members'}, {rule}")
                ax2.fill_between(xs, lo, hi, color=colour, alpha=0.12, lw=0)
        ax2.set_xscale("log")
        ax2.set_xticks(xs, [str(v) for v in xs])
        ax2.set_xlabel("photos per person")
        ax2.set_ylim(-0.03, 1.03)
        ax2.set_title("all members vs non-members")
        ax1.legend(loc="lower right", fontsize=7)
        ax2.legend(loc="center right", fontsize=6)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=150, metadata={"Software": None})
    return buf.getvalue()


def study_report_block(study_dir: str | Path) -> dict:
    """The `study` block the report partials read: the plot as a data: URI and a one-line summary."""
    study_dir = Path(study_dir)
    record = json.loads((study_dir / "study.json").read_text(encoding="utf-8"))
    png = (study_dir / record["plot"]).read_bytes()
    most = max(record["by_occurrences"], key=lambda r: r["occurrences"])
    none = min(record["by_occurrences"], key=lambda r: r["occurrences"])
    summary = (f"On the synthetic world, people seen {most['occurrences']} times in training were identified "
               f"{most['permutation']['rate']:.0%} of the time by the permutation test, people never seen "
               f"{none['permutation']['rate']:.0%} of the time.")
    return {"plot": "data:image/png;base64," + base64.b64encode(png).decode("ascii"), "summary": summary}
