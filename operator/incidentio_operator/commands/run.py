"""``incidentio-operator run``: the operator itself, against the current kubeconfig or in-cluster config."""

from __future__ import annotations

import argparse
import logging
import threading
from collections.abc import Coroutine
from typing import Any

from incidentio_operator.controller.settings import Settings
from incidentio_operator.handlers.options import RunOptions


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "run",
        help="run the operator",
        description="Run the operator against the cluster of the current kubeconfig, or in-cluster config.",
    )
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        metavar="NS",
        help="watch this namespace (repeatable; globs allowed)",
    )
    scope.add_argument("-A", "--all-namespaces", action="store_true", help="watch every namespace (the default)")
    parser.add_argument(
        "--peering", metavar="NAME", help="run in active/standby with other replicas through this kopf peering object"
    )
    parser.add_argument("--priority", type=int, default=0, help="peering priority of this replica")
    parser.add_argument(
        "--liveness",
        default="http://0.0.0.0:8080/healthz",
        metavar="URL",
        help="liveness/readiness endpoint ('' to disable)",
    )
    parser.add_argument("--metrics-port", type=int, default=9090, help="Prometheus /metrics port (0 to disable)")
    parser.add_argument("--log-format", choices=("text", "json"), default="text")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument(
        "--allow-cross-namespace", action="store_true", help="let rules name destinations in other namespaces"
    )
    parser.add_argument(
        "--shard-label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="only handle DataAlerts with this label (repeatable), for sharding",
    )
    parser.add_argument("--concurrency", type=int, default=Settings.concurrency, help="reconciliation workers")
    parser.add_argument("--sweep-interval", type=float, default=Settings.sweep_interval, metavar="SECONDS")
    parser.add_argument(
        "--delivery-retry-base",
        type=float,
        default=Settings.delivery_retry_base,
        metavar="SECONDS",
        help="first retry delay of a failed delivery (doubles, up to 5m)",
    )
    parser.add_argument(
        "--secret-poll-interval",
        type=float,
        default=Settings.secret_poll_interval,
        metavar="SECONDS",
        help="how often each destination re-reads its API key Secret (no Secret is watched)",
    )
    parser.add_argument("--test-retry-base", type=float, default=Settings.test_retry_base, metavar="SECONDS")
    parser.add_argument("--incidentio-timeout", type=float, default=10.0, metavar="SECONDS")
    parser.add_argument("--incidentio-max-attempts", type=int, default=4)
    parser.add_argument(
        "--rate-limit-per-minute",
        type=int,
        default=1200,
        help="incident.io requests per minute per API key (its published limit)",
    )
    parser.add_argument("--rate-limit-refill", type=float, default=20.0, metavar="PER_SECOND")
    parser.add_argument(
        "--list-page-size",
        type=int,
        default=RunOptions.list_page_size,
        metavar="N",
        help="objects per page of the list that starts each watch (0: one response); bounds memory at startup",
    )
    parser.add_argument(
        "--update-quiet",
        type=float,
        default=Settings.update_quiet,
        metavar="SECONDS",
        help="an open incident is edited once its alert has been quiet this long (a burst of changes: one edit)",
    )
    parser.add_argument(
        "--update-longest",
        type=float,
        default=Settings.update_longest,
        metavar="SECONDS",
        help="the longest a change of an open incident's alert waits for quiet before it is sent anyway",
    )
    parser.add_argument(
        "--settled-alert-ttl",
        type=float,
        default=None,
        metavar="SECONDS",
        help="delete settled DataAlerts this long after they settled, unless they set spec.ttlSecondsAfterSettled "
        "(default: keep them)",
    )
    parser.add_argument(
        "--clock-offset",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="FOR TESTING ONLY: run the operator's clock this far ahead of the system clock (negative: behind), "
        "to try schedules, blackouts and cooldowns at chosen times",
    )
    parser.set_defaults(func=main)


def options_from(args: argparse.Namespace) -> RunOptions:
    shard: dict[str, str] = {}
    for item in args.shard_label:
        key, _, value = item.partition("=")
        shard[key] = value
    return RunOptions(
        settings=Settings(
            concurrency=args.concurrency,
            allow_cross_namespace=args.allow_cross_namespace,
            sweep_interval=args.sweep_interval,
            delivery_retry_base=args.delivery_retry_base,
            test_retry_base=args.test_retry_base,
            secret_poll_interval=args.secret_poll_interval,
            rate_limit_refill=args.rate_limit_refill,
            shard_labels=tuple(sorted(shard.items())),
            namespaces=tuple(args.namespace),
            update_quiet=args.update_quiet,
            update_longest=args.update_longest,
            settled_alert_ttl=args.settled_alert_ttl,
        ),
        incidentio_timeout=args.incidentio_timeout,
        incidentio_max_attempts=args.incidentio_max_attempts,
        rate_limit_per_minute=args.rate_limit_per_minute,
        rate_limit_refill_per_second=args.rate_limit_refill,
        list_page_size=args.list_page_size,
        clock_offset=args.clock_offset,
    )


def main(args: argparse.Namespace) -> int:
    import kopf
    from prometheus_client import start_http_server

    import incidentio_operator.handlers  # noqa: F401  (registers the handlers)
    from incidentio_operator.controller.metrics import Metrics

    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
        log_refkey="object" if args.log_format == "json" else None,
    )
    # Per-request lines of the HTTP libraries would drown the operator's own; kopf logs every
    # watch event it hands to a handler at INFO, which with thousands of alerts is noise too.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(logging.WARNING)
    if not args.verbose:
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    metrics = Metrics()
    if args.metrics_port:
        start_http_server(args.metrics_port, registry=metrics.registry)
    memo = kopf.Memo(options=options_from(args), metrics=metrics)
    kopf.run(
        standalone=args.peering is None,
        peering_name=args.peering,
        priority=args.priority,
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        liveness_endpoint=args.liveness or None,
        memo=memo,
    )
    return 0


def in_process(server: str, token: str, stop_flag: threading.Event) -> Coroutine[Any, Any, None]:
    """The operator as a coroutine against the API server at ``server``, stopped by ``stop_flag`` (for the demo)."""
    import kopf

    import incidentio_operator.handlers  # noqa: F401  (registers the handlers)

    memo = kopf.Memo(options=RunOptions(), login=lambda: kopf.ConnectionInfo(server=server, token=token))
    return kopf.operator(standalone=True, clusterwide=True, memo=memo, stop_flag=stop_flag)
