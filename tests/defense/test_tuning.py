"""The face redaction's defaults: chosen on some world seeds, judged on one never used for choosing (issue 21).

The figures are `bench/bench_face_redaction.py`'s rows on world models built with `idia world build --seed N`
(minutes each: too slow for the suite), recorded in `idia.defense.tuning`. What the tests recompute from them:
the goal (from the counts), the selection (from every row measured on the choosing seeds), and that the
defaults FaceRedactor ships are the chosen ones; the held-out seed's figures are asserted as measured."""

import pytest

from idia.defense import tuning
from idia.defense.redact_image import FaceRedactor


@pytest.mark.parametrize("row, expected", [
    ({"redacted": [10, 2, 10], "others": [86, 77, 90], "utility": [0.65, 0.60]}, (True, True, True)),
    ({"redacted": [10, 3, 10], "others": [86, 76, 90], "utility": [0.65, 0.59]}, (False, False, False)),
    ({"redacted": [8, 1, 8], "others": [50, 45, 50], "utility": [0.5, 0.52]}, (True, True, True)),
])
def test_the_goal_is_recomputed_from_the_counts(row, expected):
    """At most 20% of the redacted identified after, other members -10.0 points at most, utility -5 at most."""
    met = tuning.meets_goal(row)
    assert (met["redacted"], met["others"], met["utility"]) == expected and met["all"] == all(expected)


def test_the_defaults_are_the_setting_the_choosing_seeds_select():
    """The selection recomputed from every row measured on the two choosing seeds picks the shipped defaults. On
    seed 0 alone the previous default met the goal only at its edge (others -10.0 points); on seed 1 it cost the
    other members 20 points. Of the settings that meet the goal on both, name_weight 0.05 loses the fewest points
    at worst (4.4, against 5.6 and 6.7 for 0.02 and 0.01)."""
    assert tuning.CHOSEN_ON_WORLD_SEEDS == (0, 1) and tuning.JUDGED_ON_WORLD_SEED not in tuning.CHOSEN_ON_WORLD_SEEDS
    assert tuning.choose(tuning.ROWS, tuning.CHOSEN_ON_WORLD_SEEDS) == tuning.CHOSEN_LABEL
    params = FaceRedactor().get_params()
    assert {k: params[k] for k in tuning.CHOSEN} == tuning.CHOSEN == {"name_weight": 0.05}
    for seed in tuning.CHOSEN_ON_WORLD_SEEDS:
        row = tuning.chosen_row(seed)
        assert row["params"] == tuning.CHOSEN and tuning.meets_goal(row)["all"]
    by_seed = {seed: {r["label"]: r for r in tuning.ROWS[seed]} for seed in (0, 1)}
    worst = {label: max(-tuning.points(*by_seed[s][label]["others"][:2], 90) for s in (0, 1))
             for label in ("name_weight 0.05", "name_weight 0.02", "name_weight 0.01")}
    assert worst == {"name_weight 0.05": 4.4, "name_weight 0.02": 5.6, "name_weight 0.01": 6.7}
    assert tuning.points(*by_seed[0]["previous default"]["others"][:2], 90) == -10.0
    assert tuning.points(*by_seed[1]["previous default"]["others"][:2], 90) == -20.0
    assert not tuning.meets_goal(by_seed[1][tuning.KEEP_200])["others"]
    # One seed alone would have chosen otherwise on seed 1, and nothing is chosen from a seed nothing was measured on.
    assert tuning.choose(tuning.ROWS, (0,)) == "name_weight 0.05"
    assert tuning.choose(tuning.ROWS, (1,)) == "name_weight 0.02"
    assert tuning.choose(tuning.ROWS, (0, 99)) is None


def test_the_record_says_what_chose_the_defaults_and_what_judged_them():
    record = tuning.face_tuning()
    assert record["chosen_on_world_seeds"] == [0, 1]
    assert record["defaults"] == {k: FaceRedactor().get_params()[k] for k in tuning.CHOSEN}
    assert all(r["meets_goal"] for r in record["chosen_on"].values()) and set(record["chosen_on"]) == {"0", "1"}
    # Judged on world seed 2, never used for choosing: the figures as measured (bench_face_redaction.py --world
    # <seed-2 world> name_weight=0.05): redacted 10 -> 2 of 10 (20%, at the goal), other members 90 -> 87
    # (-3.3 points), no non-member newly identified, utility .575 -> .514 (-6.1 points: the goal is 5).
    held = record["held_out"]
    assert record["judged_on_world_seed"] == 2 and held["params"] == tuning.CHOSEN
    assert (held["redacted"], held["others"], held["nonmembers_new"], held["utility"]) == \
        ([10, 2, 10], [90, 87, 90], [0, 100], [0.575, 0.514])
    assert tuning.meets_goal(held) == {"redacted": True, "others": True, "utility": False, "all": False}
    assert held["meets_goal"] is False
    assert tuning.shortfalls(held) == ["utility lost 6.1 points, goal at most 5"]
    # Nor do the two settings measured there after the judgement (-20.0 and -11.1 points to the other members):
    # the record recommends the text tower for forgetting a face and its name.
    assert tuning.choose(tuning.ROWS, (2,)) is None and tuning.choose(tuning.ROWS, (0, 1, 2)) is None
    assert "do not meet the goal (utility lost 6.1 points" in record["recommendation"]
    assert "chosen on seeds 0 and 1" in record["recommendation"] and "--tower text" in record["recommendation"]
    assert tuning.recommendation(tuning.chosen_row(0)) == ""
    assert tuning.recommendation(None).startswith("Not yet judged on a world never used for choosing")
