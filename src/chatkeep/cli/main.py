"""The `chatkeep` command: a group of thin subcommands."""

from __future__ import annotations

import click

from chatkeep import __version__
from chatkeep.cli.db import db
from chatkeep.cli.export import export
from chatkeep.cli.importing import import_completions
from chatkeep.cli.keys import keys
from chatkeep.cli.logs import logs
from chatkeep.cli.projects import projects
from chatkeep.cli.purge import purge
from chatkeep.cli.serve import serve


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="chatkeep")
def cli() -> None:
    """chatkeep: an OpenAI-compatible Chat Completions server with stored completions."""


cli.add_command(serve)
cli.add_command(db)
cli.add_command(keys)
cli.add_command(projects)
cli.add_command(purge)
cli.add_command(export)
cli.add_command(logs)
cli.add_command(import_completions)


def main() -> None:
    cli()
