"""One registry helper for every kind of thing idia lets a module add: model formats, engines, decision rules,
defenses, report kinds.

A kind registers itself with `@registry.register` in a module of the registry's package. The package's modules
are imported the first time the registry is read, never when it is defined, so naming a registry costs nothing,
and a module that imports a heavy library (Ray, transformers) at the top is still only imported when a command
reads the registry. Command-line choices and YAML keys are read from registries, so adding a kind is adding one
file.
"""

from __future__ import annotations

import contextlib
import importlib
import pkgutil
from typing import Callable, Generic, Iterator, TypeVar

from idia.errors import InputError

T = TypeVar("T")


class Registry(Generic[T]):
    """Named kinds of one sort, in the order `order` gives (default: by name).

    `what` names the sort in errors ("--engine", "model format"); `package` is where the built-in kinds live
    (each module registers its own); `key` gives a kind's name (default: its `name` attribute)."""

    def __init__(self, what: str, package: str | None = None, key: Callable[[T], object] | None = None,
                 order: Callable[[T], object] | None = None):
        self.what = what
        self.package = package
        self._key = key or (lambda kind: kind.name)
        self._order = order
        self._kinds: dict[object, T] = {}
        self._loaded = package is None

    def register(self, kind: T) -> T:
        """Add a kind (usable as a class decorator); a second, different kind under the same name is a bug."""
        name = self._key(kind)
        if name in self._kinds and self._kinds[name] is not kind:
            raise RuntimeError(f"two {self.what} kinds are registered as {name!r}")
        self._kinds[name] = kind
        return kind

    @contextlib.contextmanager
    def registered(self, kind: T):
        """A kind known only within the `with` block (a test's stand-in)."""
        self.register(kind)
        try:
            yield kind
        finally:
            self._kinds.pop(self._key(kind), None)

    def _load(self) -> None:
        if not self._loaded:
            self._loaded = True
            package = importlib.import_module(self.package)
            for info in pkgutil.iter_modules(package.__path__):
                if not info.name.startswith("_"):
                    importlib.import_module(f"{self.package}.{info.name}")

    def kinds(self) -> list[T]:
        self._load()
        kinds = list(self._kinds.values())
        return sorted(kinds, key=self._order) if self._order else sorted(kinds, key=lambda k: str(self._key(k)))

    def names(self) -> tuple:
        return tuple(self._key(k) for k in self.kinds())

    def get(self, name) -> T:
        """The kind called `name`, or an InputError listing the choices."""
        self._load()
        if name not in self._kinds:
            raise InputError(f"{self.what} must be one of {', '.join(map(str, self.names()))}, got {name!r}")
        return self._kinds[name]

    def __contains__(self, name) -> bool:
        self._load()
        return name in self._kinds

    def __iter__(self) -> Iterator[T]:
        return iter(self.kinds())
