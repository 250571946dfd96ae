"""The ``kubectl-armor`` console script: kubectl finds it on PATH and runs it as ``kubectl armor``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import TextIO

from incidentio_operator.kubectl.cluster import Cluster, PluginError
from incidentio_operator.kubectl.connection import run_test
from incidentio_operator.kubectl.incidents import list_incidents
from incidentio_operator.kubectl.uninstall import uninstall
from incidentio_operator.kubectl.why import explain

# Exit statuses: 0 the answer is good, 1 it is not (a failed test, no answer in time), 2 the command could
# not answer (kubeconfig, CRDs absent, access denied, no such object, usage).
USAGE_ERROR = 2


def _connection_options(parser: argparse.ArgumentParser, default: object) -> None:
    """kubectl's own flags; given before or after the command (`default` SUPPRESS keeps an earlier value)."""
    parser.add_argument("--kubeconfig", default=default, metavar="PATH", help="kubeconfig file (default: as kubectl)")
    parser.add_argument("--context", default=default, metavar="NAME", help="kubeconfig context (default: current)")
    parser.add_argument(
        "-n", "--namespace", default=default, metavar="NS", help="namespace (default: the context's namespace)"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="kubectl armor",
        description="Ask the cluster about incidentio-operator's destinations, alerts and incidents.",
        epilog="Exit status: 0 good answer, 1 bad answer (a test failed or got no answer), 2 error.",
    )
    _connection_options(parser, None)
    connection = argparse.ArgumentParser(add_help=False)
    _connection_options(connection, argparse.SUPPRESS)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    test = commands.add_parser(
        "test",
        parents=[connection],
        help="run a destination's connection test now and print the result",
        description="Set the alerting.armor.dev/test-requested-at annotation to a new value, wait for the "
        "operator's answer in status.lastTest and print it. Exit 1 when the test failed or no answer came.",
    )
    test.add_argument("destination", metavar="DESTINATION", help="IncidentIoDestination name")
    test.add_argument("--timeout", type=float, default=60.0, metavar="SECONDS", help="how long to wait (default 60)")
    why = commands.add_parser(
        "why",
        parents=[connection],
        help="which rules match an alert (or why not), its destinations and each delivery's state",
    )
    why.add_argument("alert", metavar="DATAALERT", help="DataAlert name")
    why.add_argument(
        "--allow-cross-namespace",
        action="store_true",
        help="route as an operator running with --allow-cross-namespace does",
    )
    commands.add_parser(
        "incidents",
        parents=[connection],
        help="alerts with open incidents, with references and permalinks (every namespace unless -n)",
    )
    remove = commands.add_parser(
        "uninstall",
        parents=[connection],
        help="what would stay open in incident.io without the operator, and the objects its finalizers hold",
        description="List the open incidents and the DataAlerts and IncidentIoDestinations that hold the "
        "operator's finalizers (every namespace unless -n). Exit 1 while any does; with --release-finalizers, "
        "remove them (only once the operator is stopped for good: their incidents stay open in incident.io).",
    )
    remove.add_argument(
        "--release-finalizers", action="store_true", help="remove the operator's finalizers from those objects"
    )
    return parser


def run(argv: Sequence[str] | None = None, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run one command; returns the exit status."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = build_parser().parse_args(argv)
    try:
        cluster = Cluster.connect(args.kubeconfig, args.context, args.namespace)
        try:
            if args.command == "test":
                return run_test(cluster, args.destination, out, timeout=args.timeout)
            if args.command == "why":
                return explain(cluster, args.alert, out, allow_cross_namespace=args.allow_cross_namespace)
            if args.command == "uninstall":
                return uninstall(cluster, args.namespace, out, release=args.release_finalizers)
            return list_incidents(cluster, args.namespace, out)
        finally:
            cluster.close()
    except PluginError as error:
        print(f"kubectl armor {args.command}: {error}", file=err)
        return USAGE_ERROR


def main() -> None:
    sys.exit(run())
