"""The ``incidentio-operator`` command line: one subcommand per module under ``commands/``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

# Each module defines ``register(subparsers)``; the parser it adds carries ``func(args) -> int``.
SUBCOMMANDS = (
    "incidentio_operator.commands.demo",
    "incidentio_operator.commands.run",
    "incidentio_operator.commands.simulator",
    "incidentio_operator.commands.validate",
    "incidentio_operator.commands.route",
)


def build_parser(commands: Sequence[str] | None = None) -> argparse.ArgumentParser:
    """The parser with every subcommand, or only those named in ``commands``."""
    parser = argparse.ArgumentParser(
        prog="incidentio-operator",
        description="Turn data-observability alerts declared in Kubernetes into incident.io incidents.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        if commands is None or module_name.rpartition(".")[2] in commands:
            importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    words = list(sys.argv[1:] if argv is None else argv)
    # Only the chosen command's module is imported: the operator process need not carry the schema
    # validator, CEL and the simulator that the other commands use (tens of MB of memory).
    names = {module_name.rpartition(".")[2] for module_name in SUBCOMMANDS}
    chosen = [words[0]] if words and words[0] in names else None
    args = build_parser(chosen).parse_args(words)
    sys.exit(args.func(args))
