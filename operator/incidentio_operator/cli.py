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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="incidentio-operator",
        description="Turn data-observability alerts declared in Kubernetes into incident.io incidents.",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    sys.exit(args.func(args))
