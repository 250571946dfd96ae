"""Operator start and stop: kopf settings, credentials, and the controller kept in kopf's memo."""

from __future__ import annotations

from typing import Any

import kopf

from incidentio_operator.controller import Controller
from incidentio_operator.handlers.options import RunOptions
from incidentio_operator.incidentio import IncidentIoClient, RateLimit
from incidentio_operator.kube import KubeClient, login_from_environment
from incidentio_operator.metrics import Metrics


def options_of(memo: Any) -> RunOptions:
    options = getattr(memo, "options", None)
    return options if isinstance(options, RunOptions) else RunOptions()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    options = options_of(memo)
    # Events are posted by the controller itself, with the object's coordinates; kopf's own
    # per-handler events would only say "Handler succeeded" on every watch event.
    settings.posting.enabled = False
    # Ask the API server to end each watch after 5 minutes so a silently dead connection is
    # noticed and re-established; the client gives up a little later than the server.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # A Kubernetes API call that hangs must not hang a reconciliation forever.
    settings.networking.request_timeout = 60
    # Each watch event only updates the store and queues a key; workers do the real work, so
    # kopf need not keep idle per-object tasks around for long (this bounds memory with many alerts).
    settings.batching.idle_timeout = 1.0
    settings.batching.batch_window = 0.05
    metrics: Metrics = getattr(memo, "metrics", None) or Metrics()
    incidentio = IncidentIoClient(
        timeout=options.incidentio_timeout,
        max_attempts=options.incidentio_max_attempts,
        rate_limit=RateLimit(options.rate_limit_per_minute, options.rate_limit_refill_per_second),
        observer=metrics,
        # incident.io's limit is 20 requests a second per key, and the controller lets at most 8 calls
        # per destination be in flight; httpx's pool bookkeeping costs CPU per pooled connection on
        # every request, so a larger pool would only slow a burst down.
        max_connections=10,
    )
    login = getattr(memo, "login", None) or login_from_environment
    kube = KubeClient(login)
    controller = Controller(options.settings, kube, incidentio, metrics)
    memo.metrics = metrics
    memo.controller = controller
    await controller.start()
    logger.info(
        "Controller started: %d destination(s), %d rule(s) loaded; %d workers",
        len(controller.store.destinations),
        len(controller.store.rules),
        options.settings.concurrency,
    )


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    controller: Controller | None = getattr(memo, "controller", None)
    if controller is None:
        return
    await controller.stop()
    await controller.incidentio.aclose()
    await controller.kube.aclose()


@kopf.on.login()
def login(memo: kopf.Memo, **_: Any) -> kopf.ConnectionInfo | None:
    custom = getattr(memo, "login", None)
    return custom() if custom is not None else login_from_environment()


@kopf.on.probe(id="queue")
def queue_depth(memo: kopf.Memo, **_: Any) -> int:
    controller: Controller | None = getattr(memo, "controller", None)
    return controller.queue.depth if controller is not None else 0
