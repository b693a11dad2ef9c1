"""Gaussian noise on image embeddings (defense.perturb.NoisePerturbation): `--defense perturb --kind noise`."""

from __future__ import annotations

import time

from idia.attack.settings import above
from idia.defense.base import Applied, DefenseContext, Option, register
from idia.defense.perturb import NoisePerturbation, make_perturbation


@register
class Noise:
    family, variant = "perturb", NoisePerturbation.kind
    summary = "Gaussian noise on image embeddings"
    needs_photos = False
    options = {"strength": Option("float", None, above(0), "the noise's norm relative to a unit embedding (0 would turn "
                                                         "the defense off)")}

    def apply(self, context: DefenseContext, options: dict) -> Applied:
        t0 = time.perf_counter()
        p = make_perturbation(self.variant, options.get("strength"), seed=context.seed).fit(context.loaded,
                                                                                             context.names)
        return Applied(self.variant, p, p.describe(), _record(context, t0), perturbation=p)


def _record(context: DefenseContext, t0: float) -> dict:
    return {"losses": [], "checkpoint_sha256_before": context.loaded.checkpoint_sha256,
            "checkpoint_sha256_after": None, "seconds": round(time.perf_counter() - t0, 3)}
