"""The defense registry: the command line's choices and the YAML's keys are derived from it; a new kind is one file."""


import pytest

from idia.defense import base
from idia.errors import InputError


def test_the_registry_derives_choices_and_keys():
    assert base.families() == ("redact", "perturb")
    assert base.towers() == ("text", "image", "both") and set(base.variants("perturb")) == {"noise", "project"}
    assert [d.variant for d in base.resolve("redact", "both")] == ["text", "image"]
    from idia.compliance.config import defense_keys
    assert {"tower", "preset", "strength", "side"} <= set(defense_keys())
    with pytest.raises(InputError, match="--tower must be one of text, image, both"):
        base.resolve("redact", "audio")

    class Blur:  # a defense in one place: it shows up in the choices and the keys
        family, variant, summary, needs_photos = "perturb", "blur", "blur the photos", False
        options = {"radius": base.Option("float", 1.0)}

    with base.DEFENSES.registered(Blur):
        assert "blur" in base.variants("perturb") and base.all_options()["radius"].default == 1.0
        assert base.resolve("perturb", "blur") == [Blur] and base.summaries("perturb")["blur"] == "blur the photos"
        assert "radius" in defense_keys()
    assert "blur" not in base.variants("perturb")
