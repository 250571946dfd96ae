"""Prometheus metrics of the operator: incidents, incident.io requests, rate limiting, deliveries, tests, loop lag."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from incidentio_operator.api import Destination

PREFIX = "incidentio_operator"
LAG_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1.0, 2.5, 5.0)


class Metrics:
    """One registry per operator instance, so several operators can run in one test process."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.incidents_created = Counter(
            f"{PREFIX}_incidents_created", "Incidents opened in incident.io.", ["destination"], registry=r
        )
        self.incidents_closed = Counter(
            f"{PREFIX}_incidents_closed", "Incidents closed in incident.io.", ["destination"], registry=r
        )
        self.alert_events = Counter(
            f"{PREFIX}_alert_events",
            "Alert events incident.io accepted (delivery mode AlertEvent), by status (firing, resolved).",
            ["destination", "status"],
            registry=r,
        )
        self.heartbeat_pings = Counter(
            f"{PREFIX}_heartbeat_pings",
            "Heartbeat beats by result: Succeeded (pinged), Failed (refused or no token), Skipped (not healthy).",
            ["destination", "result"],
            registry=r,
        )
        self.deliveries_failed = Counter(
            f"{PREFIX}_deliveries_failed",
            "Deliveries refused permanently by incident.io (until the alert or destination changes).",
            ["destination"],
            registry=r,
        )
        self.requests = Counter(
            f"{PREFIX}_incidentio_requests",
            "HTTP requests to incident.io by operation and status code (code 'none' when nothing answered).",
            ["operation", "code"],
            registry=r,
        )
        self.request_duration = Histogram(
            f"{PREFIX}_incidentio_request_duration_seconds",
            "Latency of HTTP requests to incident.io.",
            ["operation"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=r,
        )
        self.rate_limit_waits = Counter(
            f"{PREFIX}_rate_limit_waits",
            "Requests that waited for a rate limiter (per API key, or per alert source).",
            registry=r,
        )
        self.rate_limit_wait_seconds = Counter(
            f"{PREFIX}_rate_limit_wait_seconds",
            "Time spent waiting for a rate limiter (per API key, or per alert source).",
            registry=r,
        )
        self.deliveries_pending = Gauge(
            f"{PREFIX}_deliveries_pending", "Deliveries not yet opened (or closed) in incident.io.", registry=r
        )
        self.deliveries_waiting = Gauge(
            f"{PREFIX}_deliveries_waiting", "Deliveries waiting for their destination to become Ready.", registry=r
        )
        self.connection_tests = Counter(
            f"{PREFIX}_connection_tests",
            "Destination connection tests by result (Verified or the failure reason).",
            ["destination", "result"],
            registry=r,
        )
        self.reconcile_errors = Counter(
            f"{PREFIX}_reconcile_errors", "Reconciliations that failed and were retried.", ["kind"], registry=r
        )
        self.queue_depth = Gauge(f"{PREFIX}_queue_depth", "Objects waiting for a worker.", registry=r)
        # Set wherever a destination's Ready condition is written; no series for a suspended or deleted
        # destination, since nothing is expected of it (the alert IncidentioDestinationNotReady reads it).
        self.destination_ready = Gauge(
            f"{PREFIX}_destination_ready",
            "1 while the destination's Ready condition is True, 0 while it is False.",
            ["destination"],
            registry=r,
        )
        self.drift_checks = Counter(
            f"{PREFIX}_drift_checks",
            "Open incidents read back from incident.io, by what the read found (open, ended, error).",
            ["destination", "result"],
            registry=r,
        )
        self.orphan_closes = Counter(
            f"{PREFIX}_orphan_closes",
            "Deliveries of alerts that went away without their finalizer running, closed from their last status.",
            ["destination", "action"],
            registry=r,
        )
        self.suppressions = Counter(
            f"{PREFIX}_suppressions",
            "Deliveries held back by noise control (deferred or suppressed), by reason.",
            ["reason"],
            registry=r,
        )
        self.incident_updates = Counter(
            f"{PREFIX}_incident_updates",
            "Edits of open incidents that follow their alert, by result (Updated or UpdateFailed).",
            ["destination", "result"],
            registry=r,
        )
        self.settled_alerts_deleted = Counter(
            f"{PREFIX}_settled_alerts_deleted",
            "Settled DataAlerts deleted once their retention period (ttlSecondsAfterSettled) ran out.",
            registry=r,
        )
        self.event_loop_lag = Histogram(
            f"{PREFIX}_event_loop_lag_seconds",
            "How late a 10 ms timer fires on the operator's event loop (all its work waits that long too).",
            buckets=LAG_BUCKETS,
            registry=r,
        )

    # incidentio.RequestObserver
    def request_finished(self, operation: str, status: int | None, seconds: float) -> None:
        self.requests.labels(operation, str(status) if status is not None else "none").inc()
        self.request_duration.labels(operation).observe(seconds)

    def rate_limit_waited(self, seconds: float) -> None:
        self.rate_limit_waits.inc()
        self.rate_limit_wait_seconds.inc(seconds)

    def export_readiness(self, label: str, destination: Destination | None) -> None:
        """The destination_ready gauge, and a zero for each counter a destination's series start from.

        A counter series that first appears at 1 is invisible to rate() and increase(); a suspended or
        deleted destination has no readiness series, since nothing is expected of it.
        """
        if destination is None or (destination.spec is not None and destination.spec.suspend):
            try:
                self.destination_ready.remove(label)
            except KeyError:
                pass
            return
        self.destination_ready.labels(label).set(1.0 if destination.ready else 0.0)
        for counter in (self.incidents_created, self.incidents_closed, self.deliveries_failed):
            counter.labels(label)

    def render(self) -> bytes:
        return generate_latest(self.registry)
