"""Retention of settled DataAlerts as it runs: the alert is deleted once the deleteAfter in its status has passed.

When an alert settles and for how long it is kept is decided in decisions/delivery/retention.py and
written to its status (settledAt, deleteAfter); this deletes it, with the uid and resourceVersion it was
judged at as preconditions, so an alert changed since (re-triggered) is never deleted on a stale verdict.
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable

from incidentio_operator.api import ALERTS, API_VERSION, DataAlert
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.decisions.delivery.retention import seconds_until_deletion
from incidentio_operator.kube import KubeClient, KubeError

logger = logging.getLogger("incidentio_operator.controller.retention")


class Retention:
    """Deletes settled DataAlerts whose retention period ran out, counting each deletion."""

    def __init__(self, kube: KubeClient, metrics: Metrics, clock: Callable[[], datetime.datetime]) -> None:
        self._kube = kube
        self._metrics = metrics
        self._clock = clock

    async def expire(self, alert: DataAlert) -> float | None:
        """Delete the alert if its deleteAfter has passed; otherwise the seconds until it does (None: kept).

        A 409 (the alert changed since its status was written) or 404 (already gone) deletes nothing: the
        change brings its own reconciliation, which judges the alert as it is now.
        """
        seconds = seconds_until_deletion(alert, self._clock())
        if seconds is None or seconds > 0:
            return seconds
        ref = alert.ref
        preconditions = {"uid": alert.uid, "resourceVersion": alert.resource_version}
        try:
            await self._kube.delete(API_VERSION, ALERTS, ref.namespace, ref.name, preconditions=preconditions)
        except KubeError as exc:
            if exc.conflict or exc.not_found:
                return None
            raise
        self._metrics.settled_alerts_deleted.inc()
        logger.info("dataalert %s deleted: settled at %s, kept until %s", ref, *_retention(alert))
        return None


def _retention(alert: DataAlert) -> tuple[str, str]:
    return str(alert.status.get("settledAt") or ""), str(alert.status.get("deleteAfter") or "")
