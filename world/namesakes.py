"""The hard case for evidence about real names: people the model never saw whose names are made of parts it did see.

Real first and last names recur: a real person's "Maria" and "Novak" occur in training captions as parts of
other people's names even when the person never does. A model then finds such names familiar for any face, and a
test that ranks the name among unfamiliar made-up names flags the person without knowing them (issue 18). This
module builds that case in the synthetic world: strangers, never in training, fresh faces (appearance streams no
world person uses), 1 to 3 photos each (an auditor rarely has more), named

    first   a member's first name and a last name no member has
    last    a first name no member has and a member's last name
    both    a member's first name and another member's last name (never a member's full name)
    neither no part any member has (the control: here the old test was valid)

Every name is distinct, and none is a world person's. Deterministic in (world, seed).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from idia.attack.inputs import names as name_lists
from idia.world.faces import Appearance, render_face, sample_appearance
from idia.world.world import ROLE_MEMBER, STREAM_AUDIT, World

STRATA = ("first", "last", "both", "neither")
SHARING = ("first", "last", "both")  # the strata whose names occur in training captions
FIRST_INDEX = 10**6  # strangers' face streams start here: far above any world person's index


@dataclass(frozen=True)
class Stranger:
    """Someone the model never saw: a name built from the stratum's parts, a fresh face, a few photos."""

    index: int  # seeds the face and the photos; never a world person's
    name: str
    stratum: str  # one of STRATA
    n_photos: int
    appearance: Appearance


def _parts(world: World) -> tuple[list[str], list[str], list[str], list[str]]:
    """(members' first names, other first names, members' last names, other last names), each sorted."""
    member_first = {p.name.split(" ")[0] for p in world.identities if p.role == ROLE_MEMBER}
    member_last = {p.name.split(" ")[-1] for p in world.identities if p.role == ROLE_MEMBER}
    firsts, lasts = name_lists.first_names(), name_lists.last_names()
    return (sorted(member_first), sorted(set(firsts) - member_first),
            sorted(member_last), sorted(set(lasts) - member_last))


def make_strangers(world: World, n: int, strata=SHARING, photos: tuple[int, int] = (1, 3),
                   seed: int = 1) -> list[Stranger]:
    """n strangers, cycling through `strata` (so each holds about n / len(strata)), with between photos[0] and
    photos[1] photos each. Refuses to build more names than a stratum's parts allow."""
    unknown = set(strata) - set(STRATA)
    if unknown:
        raise ValueError(f"unknown strata {sorted(unknown)}; choose among {STRATA}")
    mf, of, ml, ol = _parts(world)
    pools = {"first": (mf, ol), "last": (of, ml), "both": (mf, ml), "neither": (of, ol)}
    taken = {p.name.casefold() for p in world.identities}
    rng = np.random.default_rng(np.random.SeedSequence([world.spec.seed, 424_242, seed]))
    out: list[Stranger] = []
    for k in range(n):
        stratum = strata[k % len(strata)]
        firsts, lasts = pools[stratum]
        for _ in range(10_000):
            name = f"{firsts[rng.integers(len(firsts))]} {lasts[rng.integers(len(lasts))]}"
            if name.casefold() not in taken:
                break
        else:
            raise ValueError(f"the {stratum!r} stratum has no new name left after {k} strangers")
        taken.add(name.casefold())
        index = FIRST_INDEX + seed * 10**7 + k
        appearance = sample_appearance(np.random.default_rng(np.random.SeedSequence([world.spec.seed, 777_777,
                                                                                     index])))
        out.append(Stranger(index, name, stratum, int(rng.integers(photos[0], photos[1] + 1)), appearance))
    return out


def stranger_photo(world: World, stranger: Stranger, k: int):
    """The k-th audit photo of a stranger (a stream no training photo comes from)."""
    return render_face(stranger.appearance, world.rng(STREAM_AUDIT, stranger.index, k), world.spec.image_size)


def write_strangers(world: World, strangers: list[Stranger], out: str | Path) -> Path:
    """out/<name>/<k>.png for every stranger: a people folder an attack reads like any other."""
    out = Path(out)
    for s in strangers:
        folder = out / s.name
        folder.mkdir(parents=True, exist_ok=True)
        for k in range(s.n_photos):
            stranger_photo(world, s, k).save(folder / f"{k:03d}.png", optimize=False)
    return out


def scenario_arrays(world: World, model_dir: str | Path, strangers: list[Stranger], cache_dir=None,
                    progress: bool = False) -> dict[str, np.ndarray]:
    """What the decide stage needs about the strangers, computed as an attack computes it (photos written as PNGs
    and read back through the encoder): image embeddings with their owners, each photo's cosine with its own
    name in every paper prompt, and each name's prompt-averaged embedding. Stored (float16) so that the validity
    test can run the real decide stage on thousands of strangers without rendering them."""
    import tempfile

    from idia.attack.decide.per_person import own_name_similarity
    from idia.attack.encode.encoder import Encoder
    from idia.attack.inputs.prompts import PAPER_TEMPLATES
    from idia.attack.model.load import load_clip
    encoder = Encoder(load_clip(str(model_dir)), device="cpu", cache_dir=cache_dir, progress=progress)
    with tempfile.TemporaryDirectory() as tmp:
        write_strangers(world, strangers, tmp)
        paths = [Path(tmp) / s.name / f"{k:03d}.png" for s in strangers for k in range(s.n_photos)]
        image_emb = encoder.encode_photos(paths)
    owner = np.repeat(np.arange(len(strangers)), [s.n_photos for s in strangers])
    means = np.empty((len(strangers), image_emb.shape[1]), dtype=np.float32)
    own = own_name_similarity(encoder, list(PAPER_TEMPLATES), [s.name for s in strangers], image_emb, owner,
                              name_means=means)
    return {"names": np.array([s.name for s in strangers]), "stratum": np.array([s.stratum for s in strangers]),
            "owner": owner, "image_emb": image_emb.astype(np.float16), "own_similarity": own.astype(np.float16),
            "name_means": means.astype(np.float16)}


def main(argv=None) -> int:
    """python -m idia.world.namesakes --out FILE [--n 2400] [--seed 1]: the stored scenario of the tests."""
    import argparse

    from idia.world.build import load_world, shipped_model_dir
    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--n", type=int, default=2400)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    world = load_world()
    arrays = scenario_arrays(world, shipped_model_dir(), make_strangers(world, args.n, seed=args.seed), progress=True)
    np.savez_compressed(args.out, seed=args.seed, **arrays)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
