"""`idia convert`: a Hugging Face CLIP folder, an OpenAI `.pt` archive or any open_clip form, written as open_clip's
hub layout (or back as a transformers CLIP folder). Thin: options in, `attack.formats.convert.convert_model` out."""

from __future__ import annotations

from pathlib import Path

import click

from idia.compliance.commands.common import friendly_errors, resolve_model_arg


@click.command("convert")
@click.argument("model")
@click.option("--checkpoint", default=None, help="Weights file, when MODEL is an architecture name or JSON config.")
@click.option("--to", "to", type=click.Choice(["open_clip", "hf"]), default="open_clip", show_default=True,
              help="open_clip: open_clip's hub layout. hf: a transformers CLIP folder.")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder to write.")
@click.option("--quiet", "-q", is_flag=True, help="Print only the path written (errors still print).")
@friendly_errors
def convert(model, checkpoint, to, out, quiet):
    """Convert MODEL (a folder, an OpenAI .pt archive, or an architecture with --checkpoint) to another layout."""
    from idia.attack.model.convert import convert_model
    written = convert_model(resolve_model_arg(model), out, to=to, checkpoint=checkpoint)  # 'world' too
    if not quiet:
        click.echo(f"{model} written as {to} to {out}", err=True)
    click.echo(str(written))
