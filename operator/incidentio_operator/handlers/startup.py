"""Operator start and stop: kopf settings, credentials, and the controller kept in kopf's memo."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import kopf

from incidentio_operator.controller.manager import Controller
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.handlers.options import RunOptions
from incidentio_operator.incidentio import IncidentIoClient, RateLimit
from incidentio_operator.kube import KubeClient


class NoDiffBase(kopf.DiffBaseStorage):
    """No last-handled configuration: the operator has event handlers only, and kopf diffs only for change handlers.

    kopf's default storage deep-copies every object on every watch event to build that diff base (and
    parses an annotation for the previous one) whether or not any handler will use it.
    """

    def build(self, *, body: kopf.Body, extra_fields: Iterable[Any] | None = None) -> kopf.BodyEssence:
        return kopf.BodyEssence()

    def fetch(self, *, body: kopf.Body) -> kopf.BodyEssence | None:
        return None

    def store(self, *, body: kopf.Body, patch: kopf.Patch, essence: kopf.BodyEssence) -> None:
        return None


class NoProgress(kopf.ProgressStorage):
    """No handler progress: kopf keeps it only for change handlers (retries, sub-handlers), and this operator has none.

    kopf's default storage still deep-copies and scrubs every object's essence on every watch event to
    strip its own progress fields from the diff base, whether or not any handler keeps progress.
    """

    def fetch(self, *, key: kopf.HandlerId, body: kopf.Body) -> kopf.ProgressRecord | None:
        return None

    def store(self, *, key: kopf.HandlerId, record: kopf.ProgressRecord, body: kopf.Body, patch: kopf.Patch) -> None:
        return None

    def purge(self, *, key: kopf.HandlerId, body: kopf.Body, patch: kopf.Patch) -> None:
        return None

    def touch(self, *, body: kopf.Body, patch: kopf.Patch, value: str | None) -> None:
        return None

    def clear(self, *, essence: kopf.BodyEssence) -> kopf.BodyEssence:
        return essence


def options_of(memo: Any) -> RunOptions:
    options = getattr(memo, "options", None)
    return options if isinstance(options, RunOptions) else RunOptions()


def configure(settings: kopf.OperatorSettings, options: RunOptions | None = None) -> None:
    """kopf's settings for this operator: what it posts, how it watches, what it keeps per object."""
    # Events are posted by the controller itself, with the object's coordinates; kopf's own
    # per-handler events would only say "Handler succeeded" on every watch event.
    settings.posting.enabled = False
    settings.persistence.diffbase_storage = NoDiffBase()
    settings.persistence.progress_storage = NoProgress()
    # Ask the API server to end each watch after 5 minutes so a silently dead connection is
    # noticed and re-established; the client gives up a little later than the server.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    # List in pages when a watch starts, so 10,000 alerts never arrive as one response parsed at once
    # (peak memory with 10,000 alerts: 195 MB in one response, 139 MB in pages of 500).
    page_size = (options or RunOptions()).list_page_size
    settings.watching.chunk_size = page_size if page_size > 0 else None
    # A Kubernetes API call that hangs must not hang a reconciliation forever.
    settings.networking.request_timeout = 60
    # Each watch event only updates the store and queues a key; workers do the real work, so
    # kopf need not keep idle per-object tasks around for long (this bounds memory with many alerts:
    # a restart over 50,000 settled alerts peaked at 324 MB with 1 s, 301 MB with 0.1 s, same CPU).
    # kopf's settings.batching.batch_window is deprecated and read nowhere in kopf 1.45.
    settings.queueing.idle_timeout = 0.1


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, logger: kopf.Logger, **_: Any) -> None:
    options = options_of(memo)
    configure(settings, options)
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
    controller = Controller(options.settings, kube, incidentio, metrics, clock=options.clock())
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


def login_from_environment() -> kopf.ConnectionInfo | None:
    """The same piggybacking kopf does: the kubernetes client's config loading, then kopf's own."""
    quiet = logging.getLogger("incidentio_operator.login")
    settings = kopf.OperatorSettings()
    try:
        info = kopf.login_via_client(logger=quiet, settings=settings)
    except Exception:  # the client library is picky about partial configs; kopf's loaders are not
        info = None
    return (
        info
        or kopf.login_with_service_account(logger=quiet, settings=settings)
        or kopf.login_with_kubeconfig(logger=quiet, settings=settings)
    )
