"""A perturbation's trade-off, strength by strength: identification of the redacted people, of everyone else, and
zero-shot utility. Shown plainly so a user can see when perturbation is the wrong defense.

Each strength reruns the attack through the perturbation (prompt embeddings come from the text cache, so a row
costs about one pass over the photos); the perturbation's directions are fitted once. A strength-0 row, the
undefended model, is always included as the baseline the others are compared with.
"""

from __future__ import annotations

import copy
import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

from idia.attack.encode.encoder import Encoder
from idia.attack.run import AttackRun, run_attack
from idia.attack.settings import AttackSettings
from idia.defense.perturb import make_perturbation
from idia.defense.utility import ZeroShotTask
from idia.io import atomic_write_json, atomic_write_text

COLUMNS = ("strength", "redacted_rate", "others_rate", "utility_top1")


def identification(run: AttackRun, names: Sequence[str]) -> tuple[float, float, int, int]:
    """(rate among the redacted, rate among the others, n redacted, n others) in one attack. The others are the
    labelled members not redacted, or, without labels, every audited person not redacted."""
    gone = {n.casefold() for n in names}
    persons = run.result.persons
    redacted = [p for p in persons if p.name.casefold() in gone]
    labelled = any(p.label is not None for p in persons)
    others = [p for p in persons if p.name.casefold() not in gone and (p.label if labelled else True)]
    rate = lambda ps: sum(p.member for p in ps) / len(ps) if ps else 0.0  # noqa: E731
    return rate(redacted), rate(others), len(redacted), len(others)


UTILITY_TOLERANCE = 0.02  # the zero-shot accuracy a defense may cost before the sweep says so


def tradeoff_warnings(rows: list[dict], n_redacted: int, n_others: int) -> list[str]:
    """Plain lines for the strengths where perturbation is the wrong defense: more other people lose their
    identification than redacted people do (the perturbation is not aimed, it blurs everyone), or zero-shot
    accuracy falls by more than UTILITY_TOLERANCE."""
    base = rows[0]
    out = []
    for row in rows[1:]:
        spared = round((base["redacted_rate"] - row["redacted_rate"]) * n_redacted)
        hit = round((base["others_rate"] - row["others_rate"]) * n_others)
        if hit > 0 and hit >= spared:
            who = "other person stops" if hit == 1 else "other people stop"
            out.append(f"strength {row['strength']:g}: {hit} {who} being identified, but only {max(spared, 0)} of "
                       f"the {n_redacted} redacted; perturbation is the wrong defense here")
        if base["utility_top1"] is not None and base["utility_top1"] - row["utility_top1"] > UTILITY_TOLERANCE:
            out.append(f"strength {row['strength']:g}: zero-shot top-1 falls from {base['utility_top1']:.3f} to "
                       f"{row['utility_top1']:.3f}; perturbation is the wrong defense here")
    if rows[1:] and base["redacted_rate"] > 0 and min(r["redacted_rate"] for r in rows[1:]) >= base["redacted_rate"]:
        out.append("no strength lowers the redacted people's identification at all")
    return out


@dataclass
class Sweep:
    kind: str
    rows: list[dict]
    warnings: list[str] = field(default_factory=list)
    settings: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "rows": self.rows}

    def csv(self) -> str:
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(COLUMNS)
        for r in self.rows:
            w.writerow(["" if r[c] is None else f"{r[c]:.6g}" for c in COLUMNS])
        return buf.getvalue()

    def table(self) -> str:
        lines = [f"{'strength':>9} {'redacted':>9} {'others':>9} {'utility':>9}"]
        for r in self.rows:
            util = "-" if r["utility_top1"] is None else f"{r['utility_top1']:.3f}"
            lines.append(f"{r['strength']:>9g} {r['redacted_rate']:>9.3f} {r['others_rate']:>9.3f} {util:>9}")
        return "\n".join(lines)

    def write(self, out: str | Path) -> Path:
        out = Path(out)
        atomic_write_text(out / "sweep.csv", self.csv())
        atomic_write_json(out / "sweep.json", {"kind": "idia-sweep", "schema_version": 1, **self.to_dict(),
                                               "settings": self.settings, "warnings": self.warnings})
        return out / "sweep.json"


def sweep(encoder: Encoder, names: Sequence[str], kind: str, strengths: Sequence[float], attack: AttackSettings,
          utility: ZeroShotTask | None = None, seed: int = 0, warn: Callable[[str], None] | None = None,
          **settings) -> Sweep:
    """The attack through `kind` at each strength (plus 0), with utility on `utility` if given. One encoder
    serves every row: the photos and prompts are encoded once."""
    levels = sorted({0.0, *(float(s) for s in strengths)})
    fitted = make_perturbation(kind, max(levels), seed=seed, **settings).fit(encoder.loaded, names)
    rows = []
    for level in levels:
        p = copy.copy(fitted)
        p.strength = level
        run = run_attack(attack, perturbation=p, warn=warn if level == 0 else None, encoder=encoder)
        red, oth, n_red, n_oth = identification(run, names)
        rows.append({"strength": level, "redacted_rate": red, "others_rate": oth,
                     "utility_top1": utility.top1(p) if utility is not None else None})
    result = Sweep(kind, rows, settings=fitted.settings() | {"strengths": levels, "n_redacted": n_red,
                                                             "n_others": n_oth})
    result.warnings = tradeoff_warnings(rows, n_red, n_oth)
    return result
