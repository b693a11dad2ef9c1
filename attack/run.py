"""An attack from inputs on disk to `results.json` + `scores.csv`: scan → ask → encode → decide → record.

`run_attack` only calls the stages; each is a function (or the Encoder) with explicit inputs and outputs:
  scan    inputs.scan.scan            people, reference people, labels, prompts; every photo checked and hashed
  ask     inputs.question.ask         which names each person is picked among (shared list or per person)
  encode  encode.encoder.Encoder      photos and prompts → embeddings (device, precision, workers, caches)
  decide  decide.rules.decide         votes, scores, verdicts, p-values under the chosen rule, metrics
  record  record.build, record.scores per-person results; the raw answers streamed to disk
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from idia.attack.decide.evidence import Evidence
from idia.attack.decide.per_person import OthersSample, own_name_similarity
from idia.attack.decide.rules import Names, choose_rule, decide
from idia.attack.encode.encoder import Encoder
from idia.attack.encode.further import FurtherNames
from idia.attack.inputs import prompts
from idia.attack.inputs.question import PER_PERSON, Question, ask
from idia.attack.inputs.scan import Scan, scan
from idia.attack.model.adapter import LoadedModel
from idia.attack.model.load import load_clip
from idia.attack.record.build import person_results
from idia.attack.record.results import AttackResult
from idia.attack.record.scores import score_rows, write_scores
from idia.attack.settings import AttackSettings
from idia.errors import InputError
from idia.io import atomic_write_text, sha256_file
from idia.manifest import build_manifest
from idia.runtime import runtime_facts


class Perturbation(Protocol):
    """An inference-time defense the attack can run through (see `defense.perturb`)."""

    def transform_image(self, emb: np.ndarray) -> np.ndarray: ...
    def transform_text(self, emb: np.ndarray) -> np.ndarray: ...
    def describe(self) -> dict: ...


@dataclass
class AttackRun:
    """A finished attack: the JSON record, the evidence arrays for further analysis, and what the raw table
    needs to be streamed to disk (`write_attack`)."""

    result: AttackResult
    evidence: Evidence
    question: Question
    scan: Scan
    timings: dict

    @property
    def candidates(self) -> list[str]:
        return self.question.shared_names

    def score_rows(self):
        return score_rows(self.scan.everyone, self.scan.is_reference, self.evidence, self.scan.templates,
                          self.question)

    @property
    def n_score_rows(self) -> int:
        return int(self.evidence.prediction.size)


def check_perturbation(perturbation, loaded: LoadedModel) -> None:
    fitted_for = perturbation.describe().get("checkpoint_sha256")
    if fitted_for != loaded.checkpoint_sha256 or not fitted_for:
        raise InputError(f"the perturbation was fitted on checkpoint {(fitted_for or 'an unnamed model')[:12]}…, "
                         f"not on this model's {(loaded.checkpoint_sha256 or 'random initialisation')[:12]}…")


@dataclass
class Encoded:
    """The encode stage's output: prompt embeddings per distractor list, photo embeddings and their owners, and in
    the per-person question each photo's similarity with its own name and the name-prior sample."""

    texts: list[np.ndarray]
    image_emb: np.ndarray
    owner: np.ndarray
    own: np.ndarray | None
    others: OthersSample | None
    names: Names
    n_images: int
    text_s: float
    images_s: float


def run_attack(settings: AttackSettings, loaded: LoadedModel | None = None, perturbation: Perturbation | None = None,
               warn=None, encoder: Encoder | None = None) -> AttackRun:
    """Run the IDIA on the people (and reference people) in `settings`: scan → ask → encode → decide → record.
    Decides everyone together."""
    settings.validate()
    t0 = time.perf_counter()
    notices: list[str] = []

    def note(msg: str) -> None:
        notices.append(msg)
        if warn:
            warn(msg)

    found = scan(settings, note)  # nobody auditable is an InputError there
    chosen = choose_rule(settings, bool(found.is_reference.any()))  # a conflict is refused before any model runs
    if encoder is None:
        encoder = Encoder.from_settings(loaded or load_clip(settings.model, settings.checkpoint), settings, warn=note)
    _check_inputs(settings, found, encoder.loaded, perturbation, note)
    question = _ask(settings, found, note)
    setup_s = time.perf_counter() - t0
    encoded = _encode(settings, found, question, encoder, perturbation)
    t3 = time.perf_counter()
    decision = decide(settings, chosen, question, encoded.image_emb, encoded.owner, encoded.texts,
                      encoder.loaded.logit_scale, found.is_reference, [found.labels.get(p.name) for p in found.everyone],
                      own_similarity=encoded.own, others=encoded.others, names=encoded.names)
    timings = {"setup_s": setup_s, "text_s": encoded.text_s, "images_s": encoded.images_s,
               "decide_s": time.perf_counter() - t3,
               "text_cached": all(b["from_cache"] for b in encoder.log.text_blocks), "n_images": encoded.n_images,
               "n_prompt_texts": len(found.templates) * sum(len(names) for names in question.text_lists())}
    result = _record(settings, found, question, encoder, encoded, decision, perturbation, notices)
    return AttackRun(result=result, evidence=decision.evidence, question=question, scan=found, timings=timings)


def _check_inputs(settings: AttackSettings, found: Scan, loaded: LoadedModel, perturbation, note) -> None:
    if perturbation is not None:
        check_perturbation(perturbation, loaded)
    if settings.labels:
        missing = sorted(set(found.labels) - {p.name for p in found.audit})
        if missing:
            note(f"{settings.labels}: {len(missing)} labelled name(s) are not among the audited people, "
                 f"e.g. {missing[0]!r}")


def _ask(settings: AttackSettings, found: Scan, note) -> Question:
    """The ask stage: which names each person is picked among."""
    question = ask([p.name for p in found.everyone], settings.n_candidates, settings.candidate_set, settings.seed,
                   settings.candidates, listed=[p.name for p in found.audit + found.reference],
                   pool=settings.distractors, aliases=found.aliases, draw=settings.distractor_draw,
                   attributes=found.attributes)
    if question.added_true_names:
        note(f"{settings.candidates}: {len(question.added_true_names)} true name(s) missing from the candidate "
             "list were added")
    return question


def _encode(settings: AttackSettings, found: Scan, question: Question, encoder: Encoder, perturbation) -> Encoded:
    """The encode stage: every distractor list's prompts once, every photo once (through the caches), then the
    inference-time perturbation if any; per person, each photo's own name too."""
    t0 = time.perf_counter()
    texts = [encoder.prompt_embeddings(found.templates, names) for names in question.text_lists()]  # once a group
    t1 = time.perf_counter()
    paths, hashes, owner = found.photo_table()
    image_emb = encoder.encode_photos(paths, hashes)
    t2 = time.perf_counter()
    if perturbation is not None:
        image_emb = perturbation.transform_image(image_emb)
        texts = [perturbation.transform_text(t) for t in texts]
    own = others = name_means = None
    if question.mode == PER_PERSON:
        others = OthersSample(image_emb, owner, texts, encoder.loaded.logit_scale, len(found.everyone),
                              question.group_of, seed=settings.seed)
        name_means = np.empty((len(question.person_names), image_emb.shape[1]), dtype=np.float32)
        own = own_name_similarity(encoder, found.templates, question.person_names, image_emb, owner, perturbation,
                                  prior=others, name_means=name_means)
    further = FurtherNames(encoder, found.templates, question, settings.max_distractors, perturbation)
    return Encoded(texts, image_emb, owner, own, others, Names(name_means, further), len(paths), t1 - t0, t2 - t1)


def _inputs_manifest(settings: AttackSettings, found: Scan, question: Question, loaded: LoadedModel) -> dict:
    """Every input's SHA-256: what anyone needs to check that a rerun examined the same bytes."""
    optional = lambda path: sha256_file(path) if path else None  # noqa: E731
    return {
        "checkpoint": {"path": loaded.checkpoint, "sha256": loaded.checkpoint_sha256},
        "model_config_sha256": loaded.config_sha256,
        "candidates": {"source": question.source, "sha256": question.sha256,
                       "file_sha256": optional(settings.candidates)},
        "templates_sha256": prompts.templates_sha256(found.templates),
        "labels_sha256": optional(settings.labels),
        "distractors_sha256": optional(settings.distractors),
        "aliases_sha256": optional(settings.aliases),
        "attributes_sha256": optional(settings.attributes),
        "images": [{"person": p.name, "file": str(ph.path), "sha256": ph.sha256}
                   for p in found.audit + found.reference for ph in p.photos],
        **settings.extra_inputs,
    }


def _record(settings: AttackSettings, found: Scan, question: Question, encoder: Encoder, encoded: Encoded,
            decision, perturbation, notices: list[str]) -> AttackResult:
    """The record stage: results.json's typed contents."""
    loaded = encoder.loaded
    persons = person_results(found.everyone, decision.evidence, decision.member, decision.p_values,
                             found.templates, question, found.labels, decision.evidence_blocks, decision.q_values)
    n_audited = found.n_audited
    runtime = runtime_facts(encoder.torch_device, encoder.precision, encoder.engine_description())
    return AttackResult(
        manifest=build_manifest(settings.seed, _inputs_manifest(settings, found, question, loaded), settings.command,
                                runtime=runtime),
        model={**{k: v for k, v in loaded.describe().items() if k not in ("model_cfg",)},
               "logit_scale": loaded.logit_scale, "embed_dim": int(encoded.texts[0].shape[2])},
        rule={**decision.rule, "templates": list(found.templates),
              "templates_source": str(settings.prompts) if settings.prompts else "paper"},
        candidates=question.describe(), calibration=decision.calibration, metrics=decision.metrics,
        persons=persons[:n_audited], reference=persons[n_audited:],
        not_auditable=[{"name": p.name, "folder": str(p.folder),
                        "skipped": [{"file": f, "why": w} for f, w in p.skipped]}
                       for p in found.audit + found.reference if not p.auditable],
        warnings=notices,
        perturbation=perturbation.describe() if perturbation is not None else None,
        encoding=encoder.describe(),
        distractors=question.distractors_block(),
        fdr=decision.fdr, agreement=decision.agreement, namesakes=decision.namesakes,
    )


def write_attack(run: AttackRun, out: str | Path) -> Path:
    """results.json and the raw table (scores.csv, or scores.csv.gz when large), each written atomically; the
    table first, so the record never points at a missing table."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    table, digest = write_scores(run.score_rows(), run.n_score_rows, out)
    run.result.manifest["outputs"] = {table.name: {"sha256": digest}}
    atomic_write_text(out / "results.json", run.result.to_json())
    return out / "results.json"
