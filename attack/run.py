"""An attack from inputs on disk to `results.json` + `scores.csv`: people → embeddings → votes → verdicts.

This is the library behind `idia attack`; the CLI only parses options into an `AttackConfig`.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import numpy as np

from . import calibrate, names, prompts
from .embed import TextCache, encode_images
from .errors import InputError
from .idia import NO_VOTE, Evidence, gather_evidence
from .io import atomic_write_text, sha256_file
from .manifest import build_manifest
from .metrics import membership_metrics
from .models import LoadedModel, load_clip
from .people import Person, scan_people
from .results import AttackResult, ImageAnswer, PersonResult, PromptVote

DEFAULT_TARGET_FPR = 0.05


class Perturbation(Protocol):
    """An inference-time defense the attack can run through (see `defense.perturb`)."""

    def transform_image(self, emb: np.ndarray) -> np.ndarray: ...
    def transform_text(self, emb: np.ndarray) -> np.ndarray: ...
    def describe(self) -> dict: ...


@dataclass
class AttackConfig:
    model: str
    people: Path
    checkpoint: str | None = None
    reference: Path | None = None
    candidates: Path | None = None
    n_candidates: int = names.DEFAULT_N_CANDIDATES
    prompts: Path | None = None
    tau: int | None = None
    target_fpr: float | None = None
    labels: Path | None = None
    max_images: int | None = None
    seed: int = 0
    cache_dir: Path | None = None
    progress: bool = True
    command: str | None = None
    extra_inputs: dict = field(default_factory=dict)


@dataclass
class AttackRun:
    """A finished attack: the JSON record, the raw table, and the evidence arrays for further analysis."""

    result: AttackResult
    scores_csv: str
    evidence: Evidence
    candidates: list[str]
    timings: dict


def read_labels(path: Path) -> dict[str, bool]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{path}: no such labels file") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(f"{path}: not a JSON labels file ({e})") from None
    if not isinstance(data, dict) or not all(isinstance(v, bool) for v in data.values()):
        raise InputError(f"{path}: labels must be a JSON object mapping each name to true (member) or false")
    return {names.normalize_name(k): v for k, v in data.items()}


def _decision(cfg: AttackConfig, has_reference: bool) -> tuple[str, int, float | None]:
    if cfg.tau is not None and cfg.target_fpr is not None:
        raise InputError("give either --tau or --target-fpr, not both")
    if cfg.target_fpr is not None and not has_reference:
        raise InputError("--target-fpr needs --reference (known non-members to calibrate on)")
    if cfg.tau is not None and cfg.tau < 1:
        raise InputError(f"--tau must be at least 1, got {cfg.tau}")
    if has_reference and cfg.tau is None:
        return "calibrated-continuous", 1, cfg.target_fpr if cfg.target_fpr is not None else DEFAULT_TARGET_FPR
    return "paper", cfg.tau if cfg.tau is not None else 1, None


def run_attack(cfg: AttackConfig, loaded: LoadedModel | None = None, perturbation: Perturbation | None = None,
               warn=None) -> AttackRun:
    """Run the IDIA on the people (and reference people) in `cfg`. Decides everyone together."""
    t0 = time.perf_counter()
    notices: list[str] = []

    def note(msg: str) -> None:
        notices.append(msg)
        if warn:
            warn(msg)

    templates = prompts.read_prompts(cfg.prompts) if cfg.prompts else prompts.PAPER_TEMPLATES
    audit = scan_people(cfg.people, cfg.max_images, warn=note)
    reference = scan_people(cfg.reference, cfg.max_images, warn=note) if cfg.reference else []
    clash = {p.name.casefold() for p in audit} & {p.name.casefold() for p in reference}
    if clash:
        raise InputError(f"{cfg.reference}: {sorted(clash)[0]!r} is both audited and a reference non-member")
    rule, tau, target_fpr = _decision(cfg, bool(reference))
    labels = read_labels(cfg.labels) if cfg.labels else {}
    loaded = loaded or load_clip(cfg.model, cfg.checkpoint)
    if perturbation is not None:
        fitted_for = perturbation.describe().get("checkpoint_sha256")
        if fitted_for and fitted_for != loaded.checkpoint_sha256:
            raise InputError(f"the perturbation was fitted on checkpoint {fitted_for[:12]}…, not on this model's "
                             f"{(loaded.checkpoint_sha256 or 'random initialisation')[:12]}…")

    everyone = [p for p in audit + reference if p.auditable]
    cand = names.build_candidates([p.name for p in audit + reference], cfg.n_candidates, cfg.seed, cfg.candidates)
    if cand.added_true_names:
        note(f"{cfg.candidates}: {len(cand.added_true_names)} true name(s) missing from the candidate list were added")

    t1 = time.perf_counter()
    text_emb, cached = TextCache(cfg.cache_dir).get_or_compute(loaded, templates, cand.names, progress=cfg.progress)
    t2 = time.perf_counter()
    paths = [ph.path for p in everyone for ph in p.photos]
    hashes = [ph.sha256 for p in everyone for ph in p.photos]
    owner = np.array([i for i, p in enumerate(everyone) for _ in p.photos], dtype=np.int64)
    image_emb = encode_images(loaded, paths, progress=cfg.progress, sha256s=hashes) if paths else np.zeros((0, text_emb.shape[2]), np.float32)
    t3 = time.perf_counter()
    if perturbation is not None:
        image_emb = perturbation.transform_image(image_emb)
        text_emb = perturbation.transform_text(text_emb)
    logit_scale = float(loaded.model.logit_scale.exp().item())
    ev = gather_evidence(image_emb, owner, np.array([cand.position(p.name) for p in everyone], dtype=np.int64), text_emb, logit_scale)
    t4 = time.perf_counter()

    is_ref = np.array([i >= sum(p.auditable for p in audit) for i in range(len(everyone))], dtype=bool)
    n_prompts, n_cand = len(templates), len(cand.names)
    calibration = None
    if rule == "calibrated-continuous":
        cal = calibrate.NullCalibration(target_fpr).fit(ev.mean_log_prob[is_ref])
        member = cal.predict(ev.mean_log_prob)
        p_values = cal.p_value(ev.mean_log_prob)
        calibration = {**cal.describe(), "statistic": "mean log-probability of the true name",
                       "null_scores": [float(x) for x in ev.mean_log_prob[is_ref]],
                       "null_paper_scores": [int(x) for x in ev.score[is_ref]]}
        p_method = "empirical over the reference people, on the continuous score"
    else:
        member = ev.score >= tau
        if is_ref.any():
            p_values = calibrate.empirical_p_value(ev.score[is_ref], ev.score)
            k = int((ev.score[is_ref] >= tau).sum())
            n = int(is_ref.sum())
            calibration = {"target_fpr": None, "n_reference": n, "threshold": tau, "statistic": "paper score",
                           "reference_false_positives": k, "reference_fpr": k / n,
                           "reference_fpr_ci95": list(calibrate.clopper_pearson(k, n)),
                           "p_value": "empirical: (1 + #{reference >= s}) / (1 + n_reference)",
                           "null_scores": [float(x) for x in ev.mean_log_prob[is_ref]],
                           "null_paper_scores": [int(x) for x in ev.score[is_ref]]}
            p_method = "empirical over the reference people, on the paper's score"
        else:
            p_values = calibrate.markov_p_value(ev.score, n_prompts, n_cand)
            p_method = f"analytic bound (no reference people): {calibrate.MARKOV_ASSUMPTION}"

    persons = _person_results(everyone, ev, member, p_values, templates, cand.names, labels, cfg.people)
    audited = [p for p, r in zip(persons, is_ref) if not r]
    refs = [p for p, r in zip(persons, is_ref) if r]
    for p in audit:  # skipped files belong in the record of the person they were skipped for
        for r in audited:
            if r.name == p.name:
                r.skipped = [{"file": f, "why": w} for f, w in p.skipped]
    metrics = None
    labelled = [(i, labels[p.name]) for i, p in enumerate(audited) if p.name in labels]
    if labels:
        missing = sorted(set(labels) - {p.name for p in audit})
        if missing:
            note(f"{cfg.labels}: {len(missing)} labelled name(s) are not among the audited people, e.g. {missing[0]!r}")
    if labelled:
        idx = np.array([i for i, _ in labelled])
        y = np.array([lab for _, lab in labelled])
        audit_rows = np.flatnonzero(~is_ref)[idx]
        metrics = membership_metrics(y, member[audit_rows], ev.mean_log_prob[audit_rows], ev.score[audit_rows])
        metrics["n_labelled"] = len(labelled)

    rule_doc = {
        "decided_by": rule, "tau": tau, "target_fpr": target_fpr, "n_prompts": n_prompts,
        "templates": list(templates), "templates_source": str(cfg.prompts) if cfg.prompts else "paper",
        "n_candidates": n_cand, "max_images": cfg.max_images, "p_value_method": p_method,
        "paper_rule": "per image and prompt the argmax name; per prompt the majority over the person's images "
                      "(a tie gives no vote); score = prompts voting the true name; member if score >= tau",
        "continuous_score": "mean over images and prompts of log softmax(logit_scale * cosine) of the true name",
        "explanation": ("verdicts by the paper's rule (score >= tau)" if rule == "paper" else
                        f"verdicts by the continuous score, flagged when its empirical p-value over the reference "
                        f"people is at most {target_fpr}"),
    }
    images_manifest = [{"person": p.name, "file": str(ph.path), "sha256": ph.sha256} for p in audit + reference
                       for ph in p.photos]
    inputs = {
        "checkpoint": {"path": loaded.checkpoint, "sha256": loaded.checkpoint_sha256},
        "model_config_sha256": loaded.config_sha256,
        "candidates": {"source": cand.source, "sha256": cand.sha256,
                       "file_sha256": sha256_file(cfg.candidates) if cfg.candidates else None},
        "templates_sha256": prompts.templates_sha256(templates),
        "labels_sha256": sha256_file(cfg.labels) if cfg.labels else None,
        "images": images_manifest,
        **cfg.extra_inputs,
    }
    timings = {"setup_s": t1 - t0, "text_s": t2 - t1, "text_cached": cached, "images_s": t3 - t2,
               "decide_s": t4 - t3, "n_images": len(paths), "n_prompt_texts": n_prompts * n_cand}
    result = AttackResult(
        manifest=build_manifest(cfg.seed, inputs, cfg.command),
        model={**{k: v for k, v in loaded.describe().items() if k not in ("model_cfg",)},
               "logit_scale": logit_scale, "embed_dim": int(text_emb.shape[2])},
        rule=rule_doc,
        candidates={"n": n_cand, "source": cand.source, "sha256": cand.sha256,
                    "added_true_names": cand.added_true_names},
        calibration=calibration, metrics=metrics, persons=audited, reference=refs,
        not_auditable=[{"name": p.name, "folder": str(p.folder), "skipped": [{"file": f, "why": w} for f, w in p.skipped]}
                       for p in audit + reference if not p.auditable],
        warnings=notices,
        perturbation=perturbation.describe() if perturbation is not None else None,
    )
    table = scores_table(everyone, is_ref, ev, templates, cand.names)
    return AttackRun(result=result, scores_csv=table, evidence=ev, candidates=cand.names, timings=timings)


def _finite(x: float) -> float:
    return float(x) if math.isfinite(float(x)) else -1e30


def _person_results(everyone: list[Person], ev: Evidence, member, p_values, templates, cand_names, labels,
                    root) -> list[PersonResult]:
    out = []
    for i, person in enumerate(everyone):
        rows = np.flatnonzero(ev.owner == i)
        votes = [PromptVote(template=t, vote=None if ev.vote[i, j] == NO_VOTE else cand_names[ev.vote[i, j]],
                            images_agreeing=int(ev.vote_count[i, j]), tie=bool(ev.tie[i, j]),
                            is_true_name=bool(ev.vote[i, j] == ev.true_index[i]))
                 for j, t in enumerate(templates)]
        images = [ImageAnswer(file=str(ph.path), sha256=ph.sha256,
                              top=[[cand_names[c], round(float(s), 6)] for c, s in zip(ev.top_index[r], ev.top_similarity[r])],
                              true_rank=round(float(ev.true_rank[r].mean()), 4),
                              true_prob=round(float(np.exp(ev.true_log_prob[r].astype(np.float64)).mean()), 6))
                  for ph, r in zip(person.photos, rows)]
        out.append(PersonResult(name=person.name, n_images=len(person.photos), score=int(ev.score[i]),
                                member=bool(member[i]), p_value=float(p_values[i]),
                                mean_log_prob=_finite(ev.mean_log_prob[i]), mean_rank=float(ev.mean_rank[i]),
                                mean_prob=float(ev.mean_prob[i]), votes=votes, images=images,
                                label=labels.get(person.name)))
    return out


SCORES_COLUMNS = ("set", "person", "image", "image_sha256", "prompt_index", "template", "predicted",
                  "predicted_similarity", "true_similarity", "true_rank", "true_log_prob")


def scores_table(everyone: list[Person], is_ref, ev: Evidence, templates, cand_names) -> str:
    """The raw per-image, per-prompt answers: every figure in results.json can be recomputed from these."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(SCORES_COLUMNS)
    photos = [(i, ph) for i, p in enumerate(everyone) for ph in p.photos]
    for row, (i, ph) in enumerate(photos):
        for j, t in enumerate(templates):
            w.writerow(("reference" if is_ref[i] else "audit", everyone[i].name, str(ph.path), ph.sha256, j, t,
                        cand_names[ev.prediction[row, j]], f"{ev.prediction_similarity[row, j]:.6f}",
                        f"{ev.true_similarity[row, j]:.6f}", int(ev.true_rank[row, j]),
                        f"{ev.true_log_prob[row, j]:.6f}"))
    return buf.getvalue()


def write_attack(run: AttackRun, out: str | Path) -> Path:
    """results.json and scores.csv, each written atomically; the table first, so the record never points at
    a missing table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "scores.csv", run.scores_csv)
    run.result.manifest["outputs"] = {"scores.csv": {"sha256": _sha(run.scores_csv)}}
    atomic_write_text(out / "results.json", run.result.to_json())
    return out / "results.json"


def _sha(text: str) -> str:
    from .io import sha256_text
    return sha256_text(text)
