"""idia: does this CLIP model know this person's face and name?

One import name for the whole toolkit; the folders read as the data flows (see docs/ARCHITECTURE.md):
`idia.attack` (inputs → model → encode → decide → record), `idia.defense`, `idia.compliance` (the command line,
the YAML audit and the reports), `idia.world` (the synthetic identity world) and `idia.templates`. This package
itself is the kernel every one of them shares (errors, files, names, runtime facts, the manifest, the registry);
importing it loads nothing heavy and changes nothing.
"""

from importlib import metadata as _metadata

try:
    __version__ = _metadata.version("idia")
except _metadata.PackageNotFoundError:  # pragma: no cover - a source tree that was never installed
    __version__ = "unknown"
