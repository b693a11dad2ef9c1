"""`idia scan`: whom to audit. The people a training set's captions name, how often, and their photos."""

from __future__ import annotations

from pathlib import Path

import click

from idia.compliance.commands.common import LazyChoice, friendly_errors, quiet_option, warn_printer


def _engine_names():
    from idia.attack.inputs.captions.engines import runner_names
    return runner_names()


@click.command()
@click.argument("sources", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for names.csv (name,count,alone,forms,examples: people by how many captions name them), "
                   "scan.json and, with --photos-out, photos.csv.")
@click.option("--column", default=None,
              help="The caption column of Parquet, JSONL, CSV or webdataset JSON (default: the first of caption, "
                   "text, captions, alt_text, alt, description, title, prompt, sentence; any case).")
@click.option("--image-column", default=None,
              help="A column naming each caption's local image file, relative to the file that lists it "
                   "(default: file_name, image_path, image, file, filepath or path when present).")
@click.option("--min-count", type=int, default=1, show_default=True,
              help="List people named in at least this many captions.")
@click.option("--ner-model", type=click.Path(path_type=Path), default=None,
              help="Your own spaCy pipeline or GLiNER model folder, used instead of the rules (loaded from disk "
                   "only; install spacy or gliner yourself).")
@click.option("--photos-out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Gather photos into DIR/<Name>/: each image whose caption names exactly one person, for people "
                   "with at least --min-photos of them (then `idia attack --people DIR`).")
@click.option("--min-photos", type=int, default=5, show_default=True,
              help="With --photos-out: the fewest photos a person needs to get a folder.")
@click.option("--link/--copy", default=True, show_default=True,
              help="With --photos-out: hard-link local image files (copies where a link cannot be made), or copy.")
@click.option("--engine", type=LazyChoice(_engine_names), default="local", show_default=True,
              help="Who reads the captions: local (processes on this machine) or ray (Ray tasks on a local Ray "
                   "or a cluster; every node must see the files at the same path).")
@click.option("--ray-address", default=None,
              help="With --engine ray: the cluster to join (auto, ray://HOST:PORT or HOST:PORT). Default: a local "
                   "Ray with this machine's CPUs.")
@click.option("--workers", type=int, default=None,
              help="Processes (local) or CPUs of a local Ray reading captions at once (default: every core).")
@click.option("--max-names-in-memory", "max_in_memory", type=int, default=500_000, show_default=True,
              help="Distinct names held in memory before the counts spill to disk (exact either way; this bounds "
                   "memory).")
@quiet_option
@friendly_errors
def scan(sources, out, column, image_column, min_count, ner_model, photos_out, min_photos, link, engine,
         ray_address, workers, max_in_memory, quiet):
    """Read a training set's captions, list the people they name and how often, and gather their photos.

    SOURCES are caption files or folders of them: Parquet (LAION-style), JSONL, CSV, TSV, plain text (one caption
    a line) and webdataset tar shards (key.txt or key.json beside key.jpg, .png or .webp)."""
    from idia.attack.inputs.captions.run import ScanSettings, scan_captions
    from idia.attack.settings import ray_address as check_ray_address
    from idia.errors import InputError
    from idia.io import output_lock
    if check_ray_address(ray_address):
        raise InputError(f"--ray-address {check_ray_address(ray_address)}")
    settings = ScanSettings(sources=list(sources), out=out, column=column, image_column=image_column,
                            min_count=min_count, ner_model=ner_model, photos_out=photos_out, min_photos=min_photos,
                            link=link, engine=engine, ray_address=ray_address, workers=workers,
                            max_in_memory=max_in_memory, progress=not quiet)
    with output_lock(out):
        result = scan_captions(settings, warn=warn_printer(quiet))
    if not quiet:
        click.echo(f"{result.captions:,} captions, {result.captions_naming:,} naming people; "
                   f"{result.people:,} people listed in {result.names_csv}", err=True)
        if result.photos is not None:
            click.echo(f"{result.photos['photos']:,} photos of {result.photos['people']:,} people in "
                       f"{result.photos['folder']} (then: idia attack --people {result.photos['folder']} "
                       f"--occurrences {result.names_csv} ...)", err=True)
    click.echo(str(result.names_csv))
