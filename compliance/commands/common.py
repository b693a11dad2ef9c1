"""What every `idia` command shares: the one-line error and exit status 2, --quiet, and the model options.

Command modules import this, never `compliance.cli` (which imports them), so `python -m compliance.cli` works.
"""

from __future__ import annotations

import functools
import sys

import click

from idia.attack.settings import click_options
from idia.errors import InputError

EXIT_INPUT = 2


def fail(message: str) -> None:
    click.echo(f"idia: error: {message}", err=True)
    sys.exit(EXIT_INPUT)


def friendly_errors(fn):
    """Turn InputError (and a missing file) into the one-line error and exit status 2."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except InputError as e:
            fail(str(e))
        except FileNotFoundError as e:
            fail(f"{e.filename}: no such file or folder")
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
