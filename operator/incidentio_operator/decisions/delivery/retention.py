"""Retention of settled DataAlerts (DESIGN.md §11): when an alert has settled, and when it is to be deleted.

Like a Job's ``ttlSecondsAfterFinished``: ``spec.ttlSecondsAfterSettled`` on the alert, else the operator's
``--settled-alert-ttl``; neither set keeps every alert. An alert is settled when none of its deliveries has
work left or an incident open: each is Closed, LeftOpen (by design: no closed status), Suppressed, or
Failed without an incident (incident.io refused the create). An active alert is settled only once every
delivery of its trigger epoch is Suppressed or Failed; one that matches no rule is not, since a rule
added later may still route it.
"""

from __future__ import annotations

import datetime
from collections.abc import Sequence
from typing import Any

from incidentio_operator.api import CLOSING_STATES, DataAlert, format_time, parse_time
from incidentio_operator.decisions.delivery.model import Delivery, State

FINISHED = (State.CLOSED, State.RESOLVED, State.LEFT_OPEN, State.SUPPRESSED, State.FAILED)
SETTLED_AT, DELETE_AFTER = "settledAt", "deleteAfter"


def ttl_of(alert: DataAlert, default: float | None) -> float | None:
    """Seconds an alert is kept once settled: its own ``spec.ttlSecondsAfterSettled``, else ``default``."""
    if alert.spec is not None and alert.spec.ttl_seconds_after_settled is not None:
        return float(alert.spec.ttl_seconds_after_settled)
    return default


def settled(alert: DataAlert, epoch: int, deliveries: Sequence[Delivery]) -> bool:
    """No delivery of the alert has work left or an incident open, and nothing more will be sent for it."""
    if alert.spec is None or alert.deleting:
        return False
    for delivery in deliveries:
        if delivery.holds_incident or delivery.state not in FINISHED:
            return False
        if delivery.state is State.FAILED and delivery.delivered:
            return False  # a refused close (or resolve): the incident (or alert) is still open in incident.io
    if alert.spec.state in CLOSING_STATES:
        return True
    current = [d for d in deliveries if d.epoch == epoch]
    return bool(current) and all(d.state in (State.SUPPRESSED, State.FAILED) for d in current)


def retention_status(
    alert: DataAlert, epoch: int, deliveries: Sequence[Delivery], default_ttl: float | None, now: datetime.datetime
) -> dict[str, Any]:
    """``settledAt`` and ``deleteAfter`` for the alert's status; None for each that must go (a merge patch
    removes it), nothing at all when there is nothing to say or take back."""
    ttl = ttl_of(alert, default_ttl)
    recorded = alert.status
    if ttl is None or not settled(alert, epoch, deliveries):
        had = any(recorded.get(key) for key in (SETTLED_AT, DELETE_AFTER))
        return {SETTLED_AT: None, DELETE_AFTER: None} if had else {}
    since = parse_time(str(recorded.get(SETTLED_AT) or "")) or now
    return {SETTLED_AT: format_time(since), DELETE_AFTER: format_time(since + datetime.timedelta(seconds=ttl))}


def seconds_until_deletion(alert: DataAlert, now: datetime.datetime) -> float | None:
    """Seconds until the alert, as last written, is to be deleted (0 or less: now); None when it is kept."""
    if alert.spec is None or alert.deleting:
        return None
    moment = parse_time(alert.delete_after)
    return None if moment is None else (moment - now).total_seconds()


def at_rest(alert: DataAlert, default_ttl: float | None) -> bool:
    """No call and no write a plan could make for the alert as last written, but delete it at its ``deleteAfter``.

    Settled (Ready in its generation, no delivery with work left), resolved or dismissed (so no rule, old or
    new, can have an incident opened for it), holding no incident and no finalizer; and its retention
    stamps are what ``retention_status`` would write with ``default_ttl`` (the operator's may have changed).
    Its readiness then follows from its deliveries alone; only ``matchedRules`` could differ, after a rule
    changed while the operator was away: it is brought up to date when the alert or its rules next change.
    """
    spec = alert.spec
    if spec is None or alert.deleting or alert.unsettled or alert.holding or alert.finalizers:
        return False
    if spec.state not in CLOSING_STATES:
        return False
    ttl = ttl_of(alert, default_ttl)
    if ttl is None:
        return not (alert.settled_at or alert.delete_after)
    since = parse_time(alert.settled_at)
    return since is not None and alert.delete_after == format_time(since + datetime.timedelta(seconds=ttl))
