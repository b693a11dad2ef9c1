"""Text-tower redaction (defense.redact.NameRedactor) as a registered defense: `--defense redact --tower text`."""

from __future__ import annotations

from idia.attack.inputs.names import read_name_file
from idia.attack.settings import at_least
from idia.defense.base import VARIANTS_HELP, Applied, DefenseContext, Option, lazy_one_of, register, variants_check


def _presets() -> tuple[str, ...]:
    from idia.defense.redact import PRESETS
    return tuple(PRESETS)


@register
class TextRedaction:
    family, variant = "redact", "text"
    summary = "fine-tune the text tower so the names read as a neutral phrase"
    needs_photos = False
    default = True
    options = {
        "neutral": Option("str", None, help="what a redacted name should read as (default 'a person')"),
        "steps": Option("int", None, at_least(1), "training steps"),
        "lr": Option("float", None, at_least(0), "learning rate"),
        "captions": Option("path", None, help="clean captions for the utility term"),
        "keep_names": Option("path", None, help="other people's names the model must keep knowing"),
        "preset": Option("str", None, lazy_one_of(_presets), "published settings: authors"),
        "variants": Option("str", None, variants_check, VARIANTS_HELP),
    }

    def apply(self, context: DefenseContext, options: dict) -> Applied:
        from idia.defense.redact import NameRedactor, read_captions
        params = {"seed": context.seed, "progress": context.progress, "precision": context.encoder.precision,
                  **{k: options[k] for k in ("neutral", "steps", "lr", "variants") if options.get(k) is not None},
                  **(options.get("redactor") or {})}
        keep = list(context.known_names) + (read_name_file(options["keep_names"]) if options.get("keep_names") else [])
        captions = read_captions(options["captions"]) if options.get("captions") else None
        est = NameRedactor.from_preset(options.get("preset"), **params).fit(
            context.loaded, context.names, captions, keep_names=keep or None, warn=context.warn)
        record = {"losses": est.losses_, "checkpoint_sha256_before": est.checkpoint_sha256_before_,
                  "checkpoint_sha256_after": est.checkpoint_sha256_after_, "seconds": round(est.seconds_, 3)}
        return Applied(self.variant, est, est.get_params(), record, loaded=est.defended())
