"""Projecting out the names' directions (defense.perturb.ProjectionPerturbation): `--kind project`."""

from __future__ import annotations

import time

from idia.attack.settings import above, one_of
from idia.defense.base import Applied, DefenseContext, Option, register
from idia.defense.kinds.noise import _record
from idia.defense.perturb import SIDES, ProjectionPerturbation, make_perturbation


@register
class Projection:
    family, variant = "perturb", ProjectionPerturbation.kind
    summary = "remove the names' directions from text (or image) embeddings"
    needs_photos = False
    default = True
    options = {"strength": Option("float", None, above(0), "directions removed (default: one per name)"),
               "side": Option("str", "text", one_of(SIDES), "which embeddings lose the directions")}

    def apply(self, context: DefenseContext, options: dict) -> Applied:
        t0 = time.perf_counter()
        p = make_perturbation(self.variant, options.get("strength"), seed=context.seed,
                              side=options.get("side") or "text").fit(context.loaded, context.names,
                                                                     encoder=context.encoder)
        return Applied(self.variant, p, p.describe(), _record(context, t0), perturbation=p)
