"""The Ray engine: caption pieces read by Ray tasks, on a local Ray (started here, bound to 127.0.0.1) or a
cluster (`--ray-address`), set up by the attack's own `start_ray`. The shared context (options, the extractor,
the people whose photos are gathered) goes once into Ray's object store. Every node must see the caption files
at the same path (a shared file system), as the attack's Ray engine needs for photos."""

from __future__ import annotations

from typing import Callable, Iterator, Sequence

from idia.attack.inputs.captions.engines import register


@register
class RayRunner:
    name = "ray"

    def __init__(self, workers: int | None = None, address: str | None = None, **_):
        self.workers = workers
        self.address = address

    def map(self, fn: Callable, items: Sequence, context: dict) -> Iterator:
        from idia.attack.encode.engines.ray import start_ray
        ray = start_ray(self.address, self.workers)
        task = ray.remote(num_cpus=1)(lambda item, ctx: fn(item, ctx))
        shared = ray.put(context)
        slots = 2 * max(1, int(ray.cluster_resources().get("CPU", 1)))
        pending = iter(items)
        running = [task.remote(item, shared) for item, _ in zip(pending, range(slots))]
        self.used_ = {"slots": slots}
        while running:
            done, running = ray.wait(running, num_returns=1)
            for ref in done:
                yield ray.get(ref)
                nxt = next(pending, None)
                if nxt is not None:
                    running.append(task.remote(nxt, shared))

    def describe(self) -> dict:
        return {"name": self.name, "address": self.address or "local", **getattr(self, "used_", {})}
