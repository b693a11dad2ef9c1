"""What every `idia` command shares: the one-line error and exit status 2, --quiet, and the model options.

Command modules import this, never `compliance.cli` (which imports them), so `python -m compliance.cli` works.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click

from attack.errors import InputError

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


cache_dir_option = click.option("--cache-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                                help="Text-embedding cache (default $IDIA_CACHE_DIR or ~/.cache/idia).")
quiet_option = click.option("--quiet", "-q", is_flag=True, help="No progress bars or notices (errors still print).")
model_options = [
    click.option("--model", "model", required=True,
                 help="open_clip architecture name (with --checkpoint), a model folder in open_clip's hub layout "
                      "(optionally 'local-dir:FOLDER'), or a JSON architecture config (with --checkpoint). "
                      "'world' is the synthetic world's shipped model."),
    click.option("--checkpoint", type=click.Path(dir_okay=False, path_type=str), default=None,
                 help="Weights file (.safetensors preferred; .pt/.pth/.bin are read with weights_only=True)."),
]


def with_model(fn):
    for opt in reversed(model_options):
        fn = opt(fn)
    return fn


def resolve_model_arg(model: str) -> str:
    if model == "world":
        from world import shipped_model_dir
        return str(shipped_model_dir())
    return model
