"""What every `idia` command shares: the one-line error and exit status 2, --quiet, and the model options.

Command modules import this, never `compliance.cli` (which imports them), so `python -m compliance.cli` works.
"""

from __future__ import annotations

import dataclasses
import functools
import sys
from pathlib import Path
from typing import Callable, Sequence

import click

from idia.attack.settings import AttackSettings, choices
from idia.errors import InputError

EXIT_INPUT = 2


def fail(message: str) -> None:
    click.echo(f"idia: error: {message}", err=True)
    sys.exit(EXIT_INPUT)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so that every `finally` runs (temporary files removed, cache shards
    kept) and the command ends with one line, as on Ctrl-C."""


def _on_sigterm(signum, frame):
    raise Terminated()


def catch_sigterm() -> None:
    """SIGTERM ends a command the way Ctrl-C does (see Terminated); set in `main`, in the main thread only."""
    import signal
    import threading
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _on_sigterm)


def os_error_line(e: OSError) -> str:
    """A file-system failure (no permission, read-only, disk full, file too large) as one line naming the path."""
    where = e.filename if e.filename is not None else "a file"
    if e.filename2 is not None:
        where = f"{e.filename} -> {e.filename2}"
    return f"{where}: {e.strerror or e} (nothing half-written was left in place; free space or fix permissions " \
           "and run again)"


def friendly_errors(fn):
    """Turn InputError, a missing file and any other file-system failure into the one-line error and exit status
    2; Ctrl-C and SIGTERM into one line and 130 or 143."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as e:
            fail(str(e))
        except FileNotFoundError as e:
            fail(f"{e.filename}: no such file or folder")
        except OSError as e:
            fail(os_error_line(e))
        except Terminated:
            click.echo("idia: terminated (SIGTERM); finished steps are on disk and a rerun resumes", err=True)
            sys.exit(143)
        except KeyboardInterrupt:
            click.echo("idia: interrupted; finished steps are on disk and a rerun resumes", err=True)
            sys.exit(130)
    return wrapper


def warn_printer(quiet: bool = False):
    """Notices to stderr, or nowhere with --quiet (they stay in the written records)."""
    def warn(message: str) -> None:
        if quiet:
            return
        click.echo(f"idia: warning: {message}", err=True)
    return warn


class LazyChoice(click.Choice):
    """A choice among names a registry holds, read when first needed (to check a value or print a command's
    help), not when the command is defined: defining the command line imports no defense, engine or model."""

    def __init__(self, names: Callable[[], Sequence[str]], case_sensitive: bool = True):
        self._names = names
        self._read: tuple[str, ...] | None = None
        super().__init__((), case_sensitive)

    @property
    def choices(self) -> tuple[str, ...]:
        if self._read is None:
            self._read = tuple(self._names())
        return self._read

    @choices.setter
    def choices(self, value) -> None:  # click.Choice.__init__ sets it; the registry is the source
        pass


def click_options(*names: str, defaults: dict | None = None):
    """A decorator adding the click options of the named settings (all option fields when none are named).

    The options do no checking of their own: the command builds `AttackSettings(...)` and calls `validate()`, so
    the command line and the YAML refuse exactly the same values."""
    defaults = defaults or {}
    chosen = [f for f in dataclasses.fields(AttackSettings) if f.metadata["flag"] and (not names or f.name in names)]
    click_type = {"path": click.Path(path_type=Path), "str": str, "int": int, "float": float}

    def decorate(fn):
        for f in reversed(chosen):
            meta = f.metadata
            default = defaults.get(f.name, None if f.default is dataclasses.MISSING else f.default)
            kind = meta["kind"]
            if kind == "bool":  # a --x/--no-x flag pair
                fn = click.option(meta["flag"], f.name, default=default, show_default=True, help=meta["help"])(fn)
                continue
            if kind == "choice":
                ctype = LazyChoice(functools.partial(choices, f.name))
            else:
                ctype = click_type[kind]
            if f.name == "checkpoint":
                ctype = click.Path(dir_okay=False, path_type=str)
            fn = click.option(meta["flag"], f.name, type=ctype, default=default, required=meta["required"],
                              show_default=default is not None and kind != "path", help=meta["help"])(fn)
        return fn
    return decorate


def settings_from_options(options: dict, **fixed) -> AttackSettings:
    """Settings from a click command's keyword arguments (those that are settings), validated."""
    names = {f.name for f in dataclasses.fields(AttackSettings)}
    values = {k: v for k, v in options.items() if k in names}
    return AttackSettings(**{**values, **fixed}).validate()


quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars or notices (errors still print).")
# Options derived from the one settings object (attack.settings.AttackSettings): the same help, names and checks
# on every command, and the same as the YAML audit's keys.
with_model = click_options("model", "checkpoint")
runtime_options = click_options("device", "precision", "workers", "fast_decode", "batch_size", "cache_dir",
                                 "engine", "ray_address")
device_options = click_options("device", "precision")
cache_dir_option = click_options("cache_dir")


def resolve_model_arg(model: str) -> str:
    """The one place 'world' (the synthetic world's shipped model) becomes a model folder."""
    if model == "world":
        from idia.world import shipped_model_dir
        return str(shipped_model_dir())
    return model
