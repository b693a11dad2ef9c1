"""The Defense protocol and its registry: every defense is one module in `defense/kinds/`, imported the first time
the registry is read.

A defense belongs to a family (`redact`: a new checkpoint; `perturb`: embeddings changed at inference time) and
has a variant within it (redact: text, image; perturb: noise, project). The command line's `--defense`, `--tower`
and `--kind` choices and the YAML audit's defense keys and kinds are all read from here, so adding a defense is
adding one file that calls `register`. Nothing here imports torch: the command line reads these choices.

`Defense.apply(context, options)` fits the defense and returns an `Applied`: what the verification attacks again
(a defended model, or a perturbation), the settings and record it reports, and how to save it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, ClassVar, Protocol, Sequence

from idia.attack.settings import one_of
from idia.errors import InputError
from idia.registry import Registry

if TYPE_CHECKING:
    from idia.attack.model.adapter import LoadedModel

BOTH = "both"  # redact: the text tower, then the image tower


def lazy_one_of(read: Callable[[], Sequence[str]]) -> Callable[[Any], str | None]:
    """`one_of` whose choices are read when a value is checked: they live beside a redactor, whose module imports
    torch, and the registry is read by the command line."""
    def check(value):
        return one_of(tuple(read()))(value)
    return check


def variants_check(value) -> str | None:
    """The check of a `variants` value ('first,last', or a list): each a name variant the probes know."""
    from idia.defense.probes import parse_variants
    from idia.errors import InputError
    try:
        parse_variants(value)
    except InputError as e:
        return str(e).replace("name variant must be", "must each be")
    return None


VARIANTS_HELP = ("also redact the forms a person is known by: first, last, initials, comma-separated (their cost "
                 "on namesakes, who share the first or last name, is in the verification's namesakes row)")


@dataclass(frozen=True)
class Option:
    """One setting a defense reads: its YAML kind (path, str, int, float, bool), default, and check."""

    kind: str
    default: Any = None
    check: Callable[[Any], str | None] | None = None
    help: str = ""


@dataclass
class DefenseContext:
    """What a defense is fitted with: the model as it stands (a chain passes the previous stage's result), the
    encoder (device, precision, caches), the names, the names to spare, and the photos it may train on."""

    loaded: LoadedModel
    encoder: Any  # attack.encoder.Encoder
    names: list[str]
    seed: int
    progress: bool = False
    known_names: list[str] = field(default_factory=list)
    unlearn_photos: dict[str, list[Path]] = field(default_factory=dict)  # redacted people's unlearn halves
    retain_photos: dict[str, list[Path]] = field(default_factory=dict)  # everyone else's unlearn halves, by name
    warn: Callable[[str], None] | None = None


@dataclass
class Applied:
    """A fitted defense: a defended model (`loaded`) or an inference-time `perturbation`, never both."""

    name: str
    estimator: Any
    settings: dict
    record: dict  # losses, checkpoint_sha256_before, checkpoint_sha256_after, seconds
    loaded: LoadedModel | None = None
    perturbation: Any = None
    stages: list["Applied"] = field(default_factory=list)  # a chain's parts, in order

    def encoder_for(self, encoder):
        """The encoder the defended model is attacked through (the same runtime settings)."""
        if self.loaded is None or encoder.loaded is self.loaded:
            return encoder
        return encoder.with_model(self.loaded)

    def attack(self, settings, encoder, warn=None):
        from idia.attack.run import run_attack
        return run_attack(settings, perturbation=self.perturbation, encoder=self.encoder_for(encoder), warn=warn)

    def correct(self, task, folder, prompt, encoder):
        """Per image of the utility task: is the defended model's top-1 class right? (`task`: the source's.)"""
        from idia.defense.utility import ZeroShotTask
        if self.loaded is None:
            return task.correct(self.perturbation)
        enc = self.encoder_for(encoder)
        return ZeroShotTask.encode(enc.loaded, folder, prompt, encoder=enc).correct()

    def save(self, out: Path, command: str | None) -> dict:
        """The defense beside the verification; {relative path: hashes} for the manifest."""
        from idia.io import sha256_file
        if self.loaded is None:
            return {"perturbation.json": {"sha256": sha256_file(self.estimator.save(out / "perturbation.json"))}}
        folder = self.save_model(out / "defended-model", command)
        outputs = {"defended-model/": {"checkpoint_sha256": self.record["checkpoint_sha256_after"]}}
        for path in sorted(folder.glob("redaction*.json")):
            outputs[f"defended-model/{path.name}"] = {"sha256": sha256_file(path)}
        return outputs

    def save_model(self, folder: Path, command: str | None = None) -> Path:
        """The defended model in open_clip's hub layout, the last stage's record as redaction.json and earlier
        stages' records (a chain) as redaction-<stage>.json beside it."""
        from idia.io import atomic_write_json
        parts = self.stages or [self]
        folder = parts[-1].estimator.save(folder, command=command)
        for stage in parts[:-1]:
            atomic_write_json(folder / f"redaction-{stage.name}.json", stage.estimator.record())
        return folder


class Defense(Protocol):
    family: ClassVar[str]
    variant: ClassVar[str]
    summary: ClassVar[str]
    needs_photos: ClassVar[bool]  # trains on the redacted people's photos (the verification splits them)
    options: ClassVar[dict[str, Option]]

    def apply(self, context: DefenseContext, options: dict) -> Applied: ...


# Keyed by (family, variant); the modules of defense/kinds/ register themselves.
DEFENSES: Registry[type] = Registry("defense", package="idia.defense.kinds",
                                    key=lambda cls: (cls.family, cls.variant))
register = DEFENSES.register


def families() -> tuple[str, ...]:
    return tuple(sorted({cls.family for cls in DEFENSES}, key=lambda f: (f != "redact", f)))


def variants(family: str) -> tuple[str, ...]:
    """The family's variants, its default (the class marked `default = True`) first."""
    found = [(not getattr(cls, "default", False), cls.variant) for cls in DEFENSES if cls.family == family]
    return tuple(v for _, v in sorted(found))


def summaries(family: str) -> dict[str, str]:
    """{variant: its one-line summary}, the default first: what the command line's help lists."""
    return {v: DEFENSES.get((family, v)).summary for v in variants(family)}


def towers() -> tuple[str, ...]:
    """`--tower` choices: every redaction variant, and both."""
    return variants("redact") + (BOTH,)


def all_options() -> dict[str, Option]:
    """Every option any defense reads (the YAML defense keys beyond kind and names)."""
    out: dict[str, Option] = {}
    for cls in DEFENSES:
        for key, opt in cls.options.items():
            if key in out and out[key].kind != opt.kind:
                raise RuntimeError(f"defense option {key!r} has two kinds: {out[key].kind}, {opt.kind}")
            out.setdefault(key, opt)
    return out


def resolve(family: str, variant: str | None = None) -> list[type]:
    """The defenses to apply, in order: one, or for `redact` with `both` every redaction variant (text first)."""
    fams = families()
    if family not in fams:
        raise InputError(f"--defense must be one of {', '.join(fams)}, got {family!r}")
    choices = variants(family)
    if variant is None:
        variant = choices[0]
    if family == "redact" and variant == BOTH:
        return [DEFENSES.get((family, v)) for v in choices]
    if variant not in choices:
        what = "--tower" if family == "redact" else "--kind"
        extra = (BOTH,) if family == "redact" else ()
        raise InputError(f"{what} must be one of {', '.join(choices + extra)}, got {variant!r}")
    return [DEFENSES.get((family, variant))]


def apply_chain(defenses: Sequence[type], context: DefenseContext, options: dict) -> Applied:
    """Apply each defense to the previous one's result; a chain of one is that defense's Applied."""
    done: list[Applied] = []
    for cls in defenses:
        if done:
            context = DefenseContext(**{**context.__dict__, "loaded": done[-1].loaded})
        done.append(cls().apply(context, options))
    if len(done) == 1:
        return done[0]
    losses, offset = [], 0
    for stage in done:
        losses += [{**row, "step": row["step"] + offset, "stage": stage.name} for row in stage.record["losses"]]
        offset += len(stage.record["losses"])
    record = {"losses": losses, "checkpoint_sha256_before": done[0].record["checkpoint_sha256_before"],
              "checkpoint_sha256_after": done[-1].record["checkpoint_sha256_after"],
              "seconds": round(sum(s.record["seconds"] for s in done), 3)}
    return Applied(name="+".join(s.name for s in done), estimator=done[-1].estimator,
                   settings={s.name: s.settings for s in done}, record=record, loaded=done[-1].loaded, stages=done)
