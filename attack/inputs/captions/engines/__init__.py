"""Who reads the caption pieces: `local` (processes on this machine) or `ray` (Ray tasks on a local Ray or a
cluster), the same `--engine` choice as the attack's photo encoding. An engine maps a function over pieces and
hands back the results in the order they finish; it keeps only a few pieces in flight per worker, so results
waiting to be merged stay bounded. One module per engine, registered with `@register`."""

from __future__ import annotations

from typing import Callable, Iterator, Protocol, Sequence

from idia.registry import Registry


class Runner(Protocol):
    name: str

    def map(self, fn: Callable, items: Sequence, context: dict) -> Iterator:
        """fn(item, context) for every item, results in the order they finish."""

    def describe(self) -> dict: ...


RUNNERS: Registry[Callable[..., Runner]] = Registry("--engine", package=__name__)
register = RUNNERS.register


def runner_names() -> tuple[str, ...]:
    return RUNNERS.names()


def make_runner(name: str, **params) -> Runner:
    return RUNNERS.get(name)(**params)
