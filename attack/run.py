"""An attack from inputs on disk to `results.json` + `scores.csv`: scan → ask → encode → decide → record.

`run_attack` only calls the stages; each is a function (or the Encoder) with explicit inputs and outputs:
  scan    inputs.scan.scan            people, reference people, labels, prompts; every photo checked and hashed
  ask     inputs.question.ask         which names each person is picked among (shared list or per person)
  encode  encode.encoder.Encoder      photos and prompts → embeddings (device, precision, workers, caches)
  decide  decide.decision.decide      votes, scores, verdicts, p-values under the chosen rule, metrics
  record  record.build, record.scores per-person results; the raw answers streamed to disk
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from idia.attack.decide.decision import Names, decide
from idia.attack.decide.evidence import Evidence
from idia.attack.decide.per_person import OthersSample, own_name_similarity
from idia.attack.decide.rules import choose_rule, levels_of
from idia.attack.encode.encoder import Encoder
from idia.attack.encode.further import FurtherNames
from idia.attack.encode.text import prompt_fit
from idia.attack.inputs import prompts
from idia.attack.inputs.question import PER_PERSON, Question, ask
from idia.attack.inputs.scan import Scan, scan
from idia.attack.model.adapter import LoadedModel
from idia.attack.model.load import load_clip
from idia.attack.record.build import person_results
from idia.attack.record.occurrences import occurrence_block
from idia.attack.record.results import AttackResult
from idia.attack.record.scores import commit_scores, score_rows, stage_scores
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


def check_perturbation(perturbation, loaded: LoadedModel, encoder: Encoder | None = None) -> None:
    """The perturbation was fitted on this model; one read from a file also re-derives what it removes from the
    names it lists (`check_fitted(encoder)`), so a file whose names were edited is refused."""
    fitted_for = perturbation.describe().get("checkpoint_sha256")
    if fitted_for != loaded.checkpoint_sha256 or not fitted_for:
        raise InputError(f"the perturbation was fitted on checkpoint {(fitted_for or 'an unnamed model')[:12]}…, "
                         f"not on this model's {(loaded.checkpoint_sha256 or 'random initialisation')[:12]}…")
    if encoder is not None and hasattr(perturbation, "check_fitted"):
        perturbation.check_fitted(encoder)


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
    chosen = choose_rule(settings, bool(found.is_reference.any()), len(found.everyone), found.n_audited)
    if chosen.why:
        note(chosen.why)
    question = _ask(settings, found, note)
    cannot_flag = chosen.rule.check_levels(levels_of(settings, chosen, question, len(found.templates),
                                                     int(found.is_reference.sum()), int(found.n_audited)))
    if cannot_flag:  # said before any model loads, and carried by the record and every report
        note(f"NOBODY CAN BE IDENTIFIED at these settings: {cannot_flag}")
    if encoder is None:
        encoder = Encoder.from_settings(loaded or load_clip(settings.model, settings.checkpoint), settings, warn=note)
    _check_inputs(settings, found, question, encoder, perturbation, note)
    setup_s = time.perf_counter() - t0
    encoded = _encode(settings, found, question, encoder, perturbation)
    t3 = time.perf_counter()
    labels = [found.labels.get(p.name) for p in found.everyone]
    decision = decide(settings, chosen, question, encoded.image_emb, encoded.owner, encoded.texts,
                      encoder.loaded.logit_scale, found.is_reference, labels,
                      own_similarity=encoded.own, others=encoded.others, names=encoded.names)
    for notice in decision.notices:
        note(notice)
    timings = {"setup_s": setup_s, "text_s": encoded.text_s, "images_s": encoded.images_s,
               "decide_s": time.perf_counter() - t3,
               "text_cached": all(b["from_cache"] for b in encoder.log.text_blocks), "n_images": encoded.n_images,
               "n_prompt_texts": len(found.templates) * sum(len(names) for names in question.text_lists())}
    result = _record(settings, found, question, encoder, encoded, decision, perturbation, notices)
    timings["total_s"] = time.perf_counter() - t0
    result.manifest["timings"] = {k: round(v, 3) if isinstance(v, float) else v for k, v in timings.items()}
    return AttackRun(result=result, evidence=decision.evidence, question=question, scan=found, timings=timings)


def _check_inputs(settings: AttackSettings, found: Scan, question: Question, encoder: Encoder, perturbation,
                  note) -> None:
    """What needs the model but no encoding: the perturbation belongs to it, its logit scale is a number, and
    every filled prompt fits its text context."""
    loaded = encoder.loaded
    if perturbation is not None:
        check_perturbation(perturbation, loaded, encoder)
    scale = loaded.logit_scale
    if not math.isfinite(scale) or scale <= 0:
        raise InputError(f"{loaded.checkpoint or loaded.source}: the model's logit scale is {scale} (NaN or "
                         "infinite weights): its probabilities are not numbers; refused before anything was encoded")
    _check_prompt_fit(found, question, loaded, note)
    if settings.labels:
        missing = sorted(set(found.labels) - {p.name for p in found.audit})
        if missing:
            note(f"{settings.labels}: {len(missing)} labelled name(s) are not among the audited people, "
                 f"e.g. {missing[0]!r}")


def _check_prompt_fit(found: Scan, question: Question, loaded: LoadedModel, note) -> None:
    """Prompts longer than the text context are cut at the end: a warning naming the people whose names are cut;
    a person whose name, cut, reads exactly as another candidate's in every prompt is refused (the model would
    score the two alike: the test cannot tell them apart)."""
    names = [n for group in question.text_lists() for n in group]
    fit = prompt_fit(loaded.tokenizer, found.templates, names, question.person_names)
    if fit is None:
        return
    if fit.alike:
        person, other = fit.alike[0]
        raise InputError(f"{person!r} and {other!r} read the same in every prompt once cut to the model's text "
                         f"context of {fit.context} tokens: the model cannot tell them apart, so no verdict about "
                         f"{person!r} would mean anything; shorten the templates (--prompts) or the names")
    if fit.cut:
        name, template, tokens = fit.cut[0]
        others = f", and {fit.n_cut_others} distractor names" if fit.n_cut_others else ""
        who = "1 person's name is" if len(fit.cut) == 1 else f"{len(fit.cut)} people's names are"
        note(f"{who} cut short in some prompts (longer than the model's text "
             f"context of {fit.context} tokens; e.g. {name!r} in {template!r}: {tokens} tokens){others}: in those "
             "prompts the model sees only the start of the name")


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
    tells_names_apart(texts, found.templates, encoder.loaded)
    t1 = time.perf_counter()
    paths, hashes, owner = found.photo_table()
    image_emb = encoder.encode_photos(paths, hashes)
    if len(image_emb) and not np.linalg.norm(image_emb, axis=1).any():
        raise InputError(f"{encoder.loaded.checkpoint or encoder.loaded.source}: the model gives every photo a zero "
                         "embedding, so every name scores alike for every photo; refused before any verdict")
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


def tells_names_apart(texts: list[np.ndarray], templates, loaded: LoadedModel) -> None:
    """A model that gives every name the same embedding in every prompt gives every name the same score: every
    answer would be a tie (an all-zero model, a template whose prefix fills the context). Refused before any
    photo is encoded."""
    with_names = [t for t in texts if t.shape[1] > 1]
    if not with_names:
        return
    alike = np.ones(len(templates), dtype=bool)
    for t in with_names:
        alike &= (t == t[:, :1, :]).all(axis=(1, 2))
    if alike.all():
        raise InputError(f"{loaded.checkpoint or loaded.source}: the model gives every candidate name the same "
                         "embedding in every prompt, so every name would score alike for every photo; it cannot be "
                         "audited (are its weights all zero?)")


def _inputs_manifest(settings: AttackSettings, found: Scan, question: Question, loaded: LoadedModel,
                     perturbation=None) -> dict:
    """Every input's SHA-256: what anyone needs to check that a rerun examined the same bytes."""
    optional = lambda path: sha256_file(path) if path else None  # noqa: E731
    described = perturbation.describe() if perturbation is not None else {}
    return {
        "perturbation": ({"file": described.get("file"), "sha256": described.get("file_sha256"),
                          "content_sha256": described.get("sha256")} if perturbation is not None else None),
        "checkpoint": {"path": loaded.checkpoint, "sha256": loaded.checkpoint_sha256},
        "model_config_sha256": loaded.config_sha256,
        "candidates": {"source": question.source, "sha256": question.sha256,
                       "file_sha256": optional(settings.candidates)},
        "templates_sha256": prompts.templates_sha256(found.templates),
        "labels_sha256": optional(settings.labels),
        "distractors_sha256": optional(settings.distractors),
        "aliases_sha256": optional(settings.aliases),
        "attributes_sha256": optional(settings.attributes),
        "occurrences_sha256": optional(settings.occurrences),
        "images": [{"person": p.name, "file": str(ph.path), "sha256": ph.sha256}
                   for p in found.audit + found.reference for ph in p.photos],
        **settings.extra_inputs,
    }


def _record(settings: AttackSettings, found: Scan, question: Question, encoder: Encoder, encoded: Encoded,
            decision, perturbation, notices: list[str]) -> AttackResult:
    """The record stage: results.json's typed contents."""
    loaded = encoder.loaded
    persons = person_results(found.everyone, decision.evidence, decision.member, decision.p_values,
                             found.templates, question, found.labels, decision.evidence_blocks, found.occurrences,
                             decision.q_values)
    n_audited = found.n_audited
    runtime = runtime_facts(encoder.torch_device, encoder.precision, encoder.engine_description())
    return AttackResult(
        manifest=build_manifest(settings.seed, _inputs_manifest(settings, found, question, loaded, perturbation),
                                settings.command, runtime=runtime,
                                extra={"settings": settings.recorded(),
                                       **({"model_info": settings.model_info} if settings.model_info else {})}),
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
        occurrences=(occurrence_block(persons[:n_audited], str(settings.occurrences), sha256_file(settings.occurrences))
                     if settings.occurrences else None),
    )


RECORD = "results.json"


def write_attack(run: AttackRun, out: str | Path) -> Path:
    """results.json and the raw table (scores.csv, or scores.csv.gz when large), changed as one unit.

    Both are made in full first (the table streamed to a temporary file and hashed, the record serialised: a
    record that cannot be written, such as one holding NaN, fails here and the folder is untouched). Then the old
    record is withdrawn, the table moved in and the new record written, each a rename: a folder holds the old pair,
    the new pair, or a table without a record (which no reader uses), never a record beside another run's table.
    The record names its table's SHA-256 and every reader checks it (`attack.record.check`)."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    tmp, name, digest = stage_scores(run.score_rows(), run.n_score_rows, out)
    try:
        run.result.manifest["outputs"] = {name: {"sha256": digest}}
        try:
            text = run.result.to_json()
        except ValueError as e:  # NaN or infinity: JSON cannot hold them, and no verdict rests on them
            raise InputError(f"{out / RECORD}: the record holds a number that is not finite ({e}); nothing was "
                             "written") from None
        (out / RECORD).unlink(missing_ok=True)
        commit_scores(tmp, name, out)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    atomic_write_text(out / RECORD, text)
    return out / RECORD
