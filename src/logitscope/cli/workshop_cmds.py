"""`workshop [DIR]`: copy the lesson notebooks somewhere to open them (or their static pages)."""

from __future__ import annotations

import click


@click.command("workshop")
@click.argument("directory", default="logitscope-workshop", required=False)
@click.option("--student", is_flag=True, help="The student edition: exercises as stubs to fill in, checked as you go.")
@click.option("--html", is_flag=True, help="Run the lessons and write them as static HTML pages with an index.")
@click.option("--force", is_flag=True, help="Overwrite notebooks that already exist in DIRECTORY.")
def workshop_cmd(directory, student, html, force):
    """Copy the workshop notebooks (8 lessons, logits to perplexity) into DIRECTORY.

    \b
    Examples:
      logitscope workshop                 # the solution edition, into ./logitscope-workshop
      logitscope workshop ~/class --student
      logitscope workshop ~/site --html   # executed pages for readers without Python (minutes)
    """
    from ..workshop import copy_lessons, html_course

    if html:
        index = html_course(directory, overwrite=force, progress=click.echo)
        click.echo(f"wrote the executed lessons as HTML: open {index}")
        return
    copied = copy_lessons(directory, overwrite=force, student=student)
    click.echo(f"copied {len(copied)} {'student' if student else 'solution'}-edition notebooks to {directory}:")
    for path in copied:
        click.echo(f"  {path.name}")
    click.echo("open them with:  pip install 'logitscope[workshop]'  then  "
               f"jupyter lab {directory}")


COMMANDS = [workshop_cmd]
