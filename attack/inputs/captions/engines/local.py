"""The local engine: caption pieces read by worker processes on this machine (one piece at a time each), or in
this process with one worker."""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from typing import Callable, Iterator, Sequence

from idia.attack.inputs.captions.engines import register

_CONTEXT: dict = {}


def _set_context(context: dict) -> None:
    _CONTEXT.clear()
    _CONTEXT.update(context)


def _call(fn: Callable, item):
    return fn(item, _CONTEXT)


def default_workers() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores)


@register
class LocalRunner:
    name = "local"

    def __init__(self, workers: int | None = None, **_):
        self.workers = default_workers() if workers is None else max(1, workers)

    def map(self, fn: Callable, items: Sequence, context: dict) -> Iterator:
        if self.workers == 1 or len(items) <= 1:
            for item in items:
                yield fn(item, context)
            return
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else None
        with ProcessPoolExecutor(min(self.workers, len(items)), mp_context=multiprocessing.get_context(method),
                                 initializer=_set_context, initargs=(context,)) as pool:
            pending = iter(items)
            running = set()
            for item in pending:
                running.add(pool.submit(_call, fn, item))
                if len(running) >= 2 * self.workers:
                    break
            while running:
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    yield future.result()
                    nxt = next(pending, None)
                    if nxt is not None:
                        running.add(pool.submit(_call, fn, nxt))

    def describe(self) -> dict:
        return {"name": self.name, "workers": self.workers}
