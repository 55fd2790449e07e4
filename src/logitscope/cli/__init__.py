"""The `logitscope` command line: thin click adapters over the library.

Each command module exposes ``COMMANDS``; add a module to ``_MODULES`` to register it.
Command modules are imported when their command runs, not at start-up: ``_COMMANDS``
names the module of each command so that ``logitscope next`` imports only
core_cmds. A module in ``_MODULES`` whose commands are not listed in ``_COMMANDS``
still works; it is imported whenever the full list of commands is needed.
"""

from __future__ import annotations

import importlib

import click

from .common import LogitscopeGroup, prepare_command

_MODULES = [
    "logitscope.cli.core_cmds",
    "logitscope.cli.perplexity_cmd",
    "logitscope.cli.generate_cmds",
    "logitscope.cli.confidence_cmds",
    "logitscope.cli.calibrate_cmds",
    "logitscope.cli.compare_cmd",
    "logitscope.cli.serve_cmd",
    "logitscope.cli.ui_cmd",
    "logitscope.cli.info_cmd",
    "logitscope.cli.models_cmds",
    "logitscope.cli.workshop_cmds",
]

# command name -> module defining it, so running one command imports one module
_COMMANDS = {
    **dict.fromkeys(["next", "score", "tokenize", "demo"], "logitscope.cli.core_cmds"),
    "perplexity": "logitscope.cli.perplexity_cmd",
    **dict.fromkeys(["dist", "sample", "generate", "beam", "tree"], "logitscope.cli.generate_cmds"),
    **dict.fromkeys(["uncertain", "truth", "rank", "lift"], "logitscope.cli.confidence_cmds"),
    **dict.fromkeys(["calibrate", "quantize"], "logitscope.cli.calibrate_cmds"),
    "compare": "logitscope.cli.compare_cmd",
    "serve": "logitscope.cli.serve_cmd",
    "ui": "logitscope.cli.ui_cmd",
    "info": "logitscope.cli.info_cmd",
    "models": "logitscope.cli.models_cmds",
    "workshop": "logitscope.cli.workshop_cmds",
}


def _commands_of(module: str) -> dict[str, click.Command]:
    return {cmd.name: prepare_command(cmd) for cmd in importlib.import_module(module).COMMANDS}


class LazyGroup(LogitscopeGroup):
    """A group that imports a command's module only when the command is looked up."""

    def list_commands(self, ctx) -> list[str]:
        unmapped = [m for m in _MODULES if m not in _COMMANDS.values()]
        return sorted(set(_COMMANDS) | {name for m in unmapped for name in _commands_of(m)})

    def get_command(self, ctx, name: str) -> click.Command | None:
        if name in _COMMANDS:
            return _commands_of(_COMMANDS[name]).get(name)
        for module in (m for m in _MODULES if m not in _COMMANDS.values()):
            found = _commands_of(module).get(name)
            if found is not None:
                return found
        return None


@click.group(cls=LazyGroup)
@click.version_option(package_name="logitscope")
def main():
    """See what a causal language model believes, token by token.

    Every command takes --model/-m (default: $LOGITSCOPE_MODEL, else the bundled
    SmolLM2-135M-Instruct) and most take --json.
    """
