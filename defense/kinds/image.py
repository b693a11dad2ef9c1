"""Image-tower redaction (defense.redact_image.FaceRedactor) as a registered defense: `--tower image`.

It trains on the unlearn half of the redacted people's photos; everyone else's unlearn halves are what it keeps.
`face_target` picks what a redacted face should embed as (FaceRedactor's `target`)."""

from __future__ import annotations

from idia.attack.settings import at_least
from idia.defense.base import VARIANTS_HELP, Applied, DefenseContext, Option, lazy_one_of, register, variants_check


def _presets() -> tuple[str, ...]:
    from idia.defense.redact_image import PRESETS
    return tuple(PRESETS)


def _targets() -> tuple[str, ...]:
    from idia.defense.redact_image import TARGETS
    return TARGETS


@register
class ImageRedaction:
    family, variant = "redact", "image"
    summary = "fine-tune the image tower so the redacted people's faces stop pointing at their names"
    needs_photos = True
    options = {
        "steps": Option("int", None, at_least(1), "training steps"),
        "lr": Option("float", None, at_least(0), "learning rate"),
        "preset": Option("str", None, lazy_one_of(_presets), "published settings: authors"),
        "face_target": Option("str", None, lazy_one_of(_targets), "image: what a redacted face should embed as: "
                              "name-null (its own embedding without its name's direction) or mean (the mean face)"),
        "variants": Option("str", None, variants_check, VARIANTS_HELP),
    }

    def apply(self, context: DefenseContext, options: dict) -> Applied:
        from idia.defense.redact_image import FaceRedactor
        params = {"seed": context.seed, "progress": context.progress, "precision": context.encoder.precision,
                  **{k: options[k] for k in ("steps", "lr", "variants") if options.get(k) is not None},
                  **({"target": options["face_target"]} if options.get("face_target") is not None else {}),
                  **(options.get("face_redactor") or {})}
        photos = {n: context.unlearn_photos.get(n, []) for n in context.names if n in context.unlearn_photos}
        est = FaceRedactor.from_preset(options.get("preset"), **params).fit(context.loaded, photos,
                                                                             context.retain_photos)
        skipped = [n for n in context.names if n not in photos]
        if skipped and context.warn:
            context.warn(f"{len(skipped)} name(s) to redact have no photos, so their faces are not unlearnt, "
                         f"e.g. {skipped[0]!r}")
        record = {"losses": est.losses_, "checkpoint_sha256_before": est.checkpoint_sha256_before_,
                  "checkpoint_sha256_after": est.checkpoint_sha256_after_, "seconds": round(est.seconds_, 3)}
        return Applied(self.variant, est, est.get_params(), record, loaded=est.defended())
