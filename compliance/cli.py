"""The `idia` command line: the group, and every command from `idia.compliance.commands` (one module each).

Thin: each command parses options and calls a library function tests call too. Bad input ends in one line on
stderr naming the file and the problem, and exit status 2. Importing this loads no model library: `idia --help`
starts at once, and each command imports what it needs when it runs.
"""

from __future__ import annotations

import os
import warnings

import click

from idia.compliance.commands import attack, audit, convert, defend, report, scan, world
from idia.compliance.commands.common import catch_sigterm


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="idia", prog_name="idia")
def main():
    """idia: does this CLIP model know this person's face and name?

    Identity inference audits of open_clip models (attack), defenses that make a model forget names (defend,
    verify), and evidence reports (report, audit). `idia demo` runs all of it on the synthetic world."""
    # An audit never reaches a hub, even if some library underneath would like to.
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    warnings.filterwarnings("ignore", message=".*QuickGELU.*")
    catch_sigterm()


for _command in (world.world, scan.scan, attack.attack, audit.audit, audit.demo, defend.defend, defend.verify,
                 report.report, convert.convert):
    main.add_command(_command)


if __name__ == "__main__":
    main()
