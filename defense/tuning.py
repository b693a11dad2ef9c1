"""How the image (face) redaction's defaults were chosen: on some worlds, and judged on another (issue 21).

Torch-free, so that the verification record and the mitigation report can carry it. The figures are the rows of
`bench/bench_face_redaction.py` (one world model each, built by `idia world build --seed N --out DIR`): 10
identified members redacted from the photos the defense trains on, attacked on 10 fresh photos each that it never
saw (permutation rule, labels given), every "after" judged at the "before" boundary:

  redacted   [identified before, identified after, n]
  others     [identified before, identified after, n]: the other members (namesakes included)
  nonmembers_new  [non-members identified after but not before, n]
  utility    [top-1 before, top-1 after]: zero-shot accuracy on the world's shapes

The goal, on every seed: at most 20% of the redacted people identified after; other members lose at most 10
points; utility loses at most 5 points. A setting is chosen only on the seeds in `chosen_on_world_seeds`; the seed
in `judged_on_world_seed` was never used for choosing, and its row is what the defaults are judged by.
"""

from __future__ import annotations

GOAL = {"redacted_identified_after_at_most": 0.20, "others_points_lost_at_most": 10.0,
        "utility_points_lost_at_most": 5.0}


def points(before: float, after: float, n: int | None = None) -> float:
    """The change in percentage points, rounded to 0.1 (counts of n, or rates when n is None)."""
    return round(100 * ((after - before) / n if n else after - before), 1)


def meets_goal(row: dict) -> dict:
    """Which parts of the goal a bench row meets, recomputed from its counts: {redacted, others, utility, all}."""
    out = {part: missed is None for part, missed in _misses(row).items()}
    out["all"] = all(out.values())
    return out


def shortfalls(row: dict) -> list[str]:
    """Each part of the goal a row misses, in words with its figure."""
    return [missed for missed in _misses(row).values() if missed is not None]


def _misses(row: dict) -> dict[str, str | None]:
    """Per part of the goal: None when the row meets it, else what it missed by."""
    _, ra, rn = row["redacted"]
    others_lost, utility_lost = -points(*row["others"][:2], row["others"][2]), -points(*row["utility"])
    return {
        "redacted": None if ra <= GOAL["redacted_identified_after_at_most"] * rn else
        f"{ra} of {rn} redacted people still identified, goal at most {GOAL['redacted_identified_after_at_most']:.0%}",
        "others": None if others_lost <= GOAL["others_points_lost_at_most"] else
        f"other members lost {others_lost:.1f} points, goal at most {GOAL['others_points_lost_at_most']:.0f}",
        "utility": None if utility_lost <= GOAL["utility_points_lost_at_most"] else
        f"utility lost {utility_lost:.1f} points, goal at most {GOAL['utility_points_lost_at_most']:.0f}"}


def choose(rows: dict[int, list[dict]], seeds) -> str | None:
    """The selection rule: among the settings measured on every one of `seeds` that meet the goal on each, the one
    whose worst other-members loss is smallest (ties: the fewest redacted people identified in all); None when
    none does."""
    by_label: dict[str, list[dict]] = {}
    for seed in seeds:
        for row in rows.get(seed, []):
            by_label.setdefault(row["label"], []).append(row)
    fits = [(max(-points(*r["others"][:2], r["others"][2]) for r in rs), sum(r["redacted"][1] for r in rs), label)
            for label, rs in by_label.items() if len(rs) == len(seeds) and all(meets_goal(r)["all"] for r in rs)]
    return min(fits)[2] if fits else None


def _row(label, params, redacted, others, nonmembers_new, utility):
    return {"label": label, "params": params, "redacted": redacted, "others": others,
            "nonmembers_new": nonmembers_new, "utility": utility}


# The bench's rows, per world seed (`bench/bench_face_redaction.py --world DIR --label L [key=value ...]`; seed 0 is
# the shipped world, seeds 1 and 2 were built by `idia world build --seed N --out DIR`). Every row of seeds 1 and 2,
# and seed 0's name_weight 0.01, 0.02 and 0.05, was measured with the same code; seed 0's name_weight 0.05
# reproduced its earlier row exactly, so seed 0's older rows stand.
KEEP_200 = "200 kept made-up faces (bench --keep-faces 200)"
ROWS = {
    0: [_row("previous default", {"name_weight": 0.0}, [10, 1, 10], [86, 77, 90], [0, 100], [0.653, 0.606]),
        _row("name_weight 0.01", {"name_weight": 0.01}, [10, 2, 10], [86, 80, 90], [0, 100], [0.653, 0.614]),
        _row("name_weight 0.02", {"name_weight": 0.02}, [10, 2, 10], [86, 81, 90], [0, 100], [0.653, 0.619]),
        _row("name_weight 0.05", {"name_weight": 0.05}, [10, 2, 10], [86, 82, 90], [0, 100], [0.653, 0.622]),
        _row("name_weight 0.1", {"name_weight": 0.1}, [10, 4, 10], [86, 83, 90], [0, 100], [0.653, 0.614]),
        _row("name_weight 0.2", {"name_weight": 0.2}, [10, 5, 10], [86, 84, 90], [0, 100], [0.653, 0.614]),
        _row("name_weight 1.0", {"name_weight": 1.0}, [10, 10, 10], [86, 86, 90], [0, 100], [0.653, 0.642]),
        _row("early stopping (holdout 0.4, stop_at 0.1)", {"holdout": 0.4, "stop_at": 0.1}, [10, 4, 10],
             [86, 80, 90], [0, 100], [0.653, 0.642]),
        _row("last block", {"trainable": "last-block"}, [10, 5, 10], [86, 86, 90], [0, 100], [0.653, 0.522]),
        _row(KEEP_200, {"name_weight": 0.0}, [10, 1, 10], [86, 78, 90], [0, 100], [0.653, 0.606])],
    1: [_row("previous default", {"name_weight": 0.0}, [10, 0, 10], [90, 72, 90], [0, 100], [0.639, 0.586]),
        _row("name_weight 0.01", {"name_weight": 0.01}, [10, 1, 10], [90, 85, 90], [0, 100], [0.639, 0.594]),
        _row("name_weight 0.02", {"name_weight": 0.02}, [10, 1, 10], [90, 88, 90], [0, 100], [0.639, 0.597]),
        _row("name_weight 0.05", {"name_weight": 0.05}, [10, 2, 10], [90, 88, 90], [0, 100], [0.639, 0.597]),
        _row(KEEP_200, {"name_weight": 0.0}, [10, 0, 10], [90, 73, 90], [0, 100], [0.639, 0.606])],
    # Never used for choosing: the choice on seeds 0 and 1 judged first; the other two rows were measured after it.
    2: [_row("name_weight 0.05", {"name_weight": 0.05}, [10, 2, 10], [90, 87, 90], [0, 100], [0.575, 0.514]),
        _row("previous default", {"name_weight": 0.0}, [10, 0, 10], [90, 72, 90], [1, 100], [0.575, 0.503]),
        _row("name_weight 0.02", {"name_weight": 0.02}, [10, 2, 10], [90, 80, 90], [1, 100], [0.575, 0.503])],
}

CHOSEN = {"name_weight": 0.05}  # FaceRedactor's defaults differ from the previous ones in this only
CHOSEN_LABEL = "name_weight 0.05"
CHOSEN_ON_WORLD_SEEDS = (0, 1)
JUDGED_ON_WORLD_SEED: int | None = 2


def chosen_row(seed: int) -> dict | None:
    return next((r for r in ROWS.get(seed, []) if r["label"] == CHOSEN_LABEL), None)


def face_tuning() -> dict:
    """What verification.json records (defense.tuning) and the mitigation report shows for the image redaction."""
    held = chosen_row(JUDGED_ON_WORLD_SEED) if JUDGED_ON_WORLD_SEED is not None else None
    return {"defaults": dict(CHOSEN), "chosen_on_world_seeds": list(CHOSEN_ON_WORLD_SEEDS),
            "judged_on_world_seed": JUDGED_ON_WORLD_SEED, "goal": dict(GOAL),
            "chosen_on": {str(s): {**chosen_row(s), "meets_goal": meets_goal(chosen_row(s))["all"]}
                          for s in CHOSEN_ON_WORLD_SEEDS},
            "held_out": {**held, "meets_goal": meets_goal(held)["all"]} if held else None,
            "recommendation": recommendation(held)}


def recommendation(held: dict | None) -> str:
    """What the record and the report recommend: the text tower unless the held-out world met the goal."""
    seeds = ("seeds " if len(CHOSEN_ON_WORLD_SEEDS) > 1 else "seed ") + " and ".join(map(str, CHOSEN_ON_WORLD_SEEDS))
    if held is None:
        return RECOMMENDATION.format(seeds=seeds)
    met = meets_goal(held)
    if not met["all"]:
        others = "no setting measured there does" if choose(ROWS, (JUDGED_ON_WORLD_SEED,)) is None else \
            "though another setting measured there does"
        return (f"On world seed {JUDGED_ON_WORLD_SEED}, never used for choosing, the face redaction's defaults "
                f"(chosen on {seeds}) do not meet the goal ({'; '.join(shortfalls(held))}), and {others}: the "
                "text-tower redaction (--tower text, the default) is the recommended default for forgetting a face "
                "and its name.")
    return ""


RECOMMENDATION = (
    "Not yet judged on a world never used for choosing: the face redaction's defaults were chosen on world "
    "{seeds} only. On a tiny CLIP idia had never seen, the previous defaults (tuned on seed 0 alone) cost the "
    "other members 29 points while the text-tower redaction held (issue 21). Until a held-out world shows the goal "
    "met, the text-tower redaction (--tower text, the default) is the recommended default for forgetting a face and "
    "its name; use --tower image where the image tower must change, and verify it on the model at hand.")
