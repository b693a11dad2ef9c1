"""The record stage: typed per-person results, and the raw per-image, per-prompt answers streamed to disk.

Linear in the number of people and photos: the photos of person i are the rows offsets[i]:offsets[i+1] of the
evidence (the scan groups them), so no person is ever looked up by scanning a list.
"""

from __future__ import annotations

import math

import numpy as np

from idia.attack.decide.evidence import NO_VOTE, Evidence
from idia.attack.inputs.people import Person
from idia.attack.inputs.question import Question
from idia.attack.record.results import ImageAnswer, PersonResult, PromptVote


def _finite(x: float) -> float:
    return float(x) if math.isfinite(float(x)) else -1e30


def offsets(ev: Evidence, n_people: int) -> np.ndarray:
    return np.searchsorted(ev.owner, np.arange(n_people + 1))


def person_results(everyone: list[Person], ev: Evidence, member, p_values, templates, question: Question,
                   labels: dict[str, bool], evidence: list[dict] | None = None,
                   occurrences: dict[str, int] | None = None) -> list[PersonResult]:
    if occurrences is not None:
        from idia.attack.inputs.occurrences import occurrence_key
    out = []
    bounds = offsets(ev, len(everyone))
    for i, person in enumerate(everyone):
        rows = range(bounds[i], bounds[i + 1])
        votes = [PromptVote(template=t, vote=None if ev.vote[i, j] == NO_VOTE else question.name_of(i, ev.vote[i, j]),
                            images_agreeing=int(ev.vote_count[i, j]), tie=bool(ev.tie[i, j]),
                            is_true_name=bool(ev.vote[i, j] == ev.true_index[i]))
                 for j, t in enumerate(templates)]
        images = [ImageAnswer(file=str(ph.path), sha256=ph.sha256,
                              top=[[question.name_of(i, c), round(float(s), 6)]
                                   for c, s in zip(ev.top_index[r], ev.top_similarity[r])],
                              true_rank=round(float(ev.true_rank[r].mean()), 4),
                              true_prob=round(float(np.exp(ev.true_log_prob[r].astype(np.float64)).mean()), 6),
                              top_tie=bool(ev.top_tie[r]) if ev.top_tie is not None else None)
                  for ph, r in zip(person.photos, rows)]
        out.append(PersonResult(name=person.name, n_images=len(person.photos), score=int(ev.score[i]),
                                member=bool(member[i]), p_value=float(p_values[i]),
                                mean_log_prob=_finite(ev.mean_log_prob[i]), mean_rank=float(ev.mean_rank[i]),
                                mean_prob=float(ev.mean_prob[i]), votes=votes, images=images,
                                skipped=[{"file": f, "why": w} for f, w in person.skipped],
                                label=labels.get(person.name), evidence=evidence[i] if evidence else None,
                                distractor_group=question.group(i).id,
                                occurrences=occurrences.get(occurrence_key(person.name))
                                if occurrences is not None else None))
    return out


