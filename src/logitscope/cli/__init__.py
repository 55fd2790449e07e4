"""The `logitscope` command line: thin click adapters over the library.

Each command module exposes ``COMMANDS``; add a module to ``_MODULES`` to register it.
"""

from __future__ import annotations

import importlib

import click

from .common import LogitscopeGroup

_MODULES = [
    "logitscope.cli.core_cmds",
    "logitscope.cli.perplexity_cmd",
    "logitscope.cli.generate_cmds",
    "logitscope.cli.confidence_cmds",
    "logitscope.cli.calibrate_cmds",
    "logitscope.cli.models_cmds",
    "logitscope.cli.workshop_cmds",
]


@click.group(cls=LogitscopeGroup)
@click.version_option(package_name="logitscope")
def main():
    """See what a causal language model believes, token by token.

    Every command takes --model/-m (default: $LOGITSCOPE_MODEL, else the bundled
    SmolLM2-135M-Instruct) and most take --json.
    """


for _name in _MODULES:
    for _cmd in importlib.import_module(_name).COMMANDS:
        main.add_command(_cmd)
