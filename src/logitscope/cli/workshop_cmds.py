"""`workshop [DIR]`: copy the lesson notebooks somewhere to open them."""

from __future__ import annotations

import click


@click.command("workshop")
@click.argument("directory", default="logitscope-workshop", required=False)
@click.option("--force", is_flag=True, help="Overwrite notebooks that already exist in DIRECTORY.")
def workshop_cmd(directory, force):
    """Copy the workshop notebooks (8 lessons, logits to perplexity) into DIRECTORY.

    \b
    Examples:
      logitscope workshop                 # into ./logitscope-workshop
      logitscope workshop ~/class --force
    """
    from ..workshop import copy_lessons

    copied = copy_lessons(directory, overwrite=force)
    click.echo(f"copied {len(copied)} notebooks to {directory}:")
    for path in copied:
        click.echo(f"  {path.name}")
    click.echo("open them with:  pip install 'logitscope[workshop]'  then  "
               f"jupyter lab {directory}")


COMMANDS = [workshop_cmd]
