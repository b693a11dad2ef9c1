"""The synthetic identity world: made-up people, a tiny CLIP trained on some of them, fresh photos of all.

Shared by the demo, the tests and the benchmarks; ground truth is known, so every claim can be measured.
"""

from idia.world.build import build_world_model, load_world, read_world_record, shipped_model_dir
from idia.world.world import World, WorldSpec, make_world, write_photos

__all__ = ["World", "WorldSpec", "make_world", "write_photos", "build_world_model", "load_world",
           "read_world_record", "shipped_model_dir"]
