"""``kubectl armor why DATAALERT``: the rules that match an alert or why not, its destinations, its deliveries."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

from incidentio_operator.api import DataAlert, Destination, ObjectRef
from incidentio_operator.api.common import condition_of
from incidentio_operator.commands.route import RouteError, RouteReport, route_alert
from incidentio_operator.kubectl.cluster import ALERTS, DESTINATIONS, RULES, Cluster
from incidentio_operator.offline.manifests import Manifest, ManifestSet


def live_manifests(bodies: Iterable[Mapping[str, Any]]) -> ManifestSet:
    """Objects read from the cluster, in the form `route_alert` reads folders in."""
    return ManifestSet(manifests=[Manifest("cluster", index, body) for index, body in enumerate(bodies)])


def route_live(
    cluster: Cluster, alert: DataAlert, destinations: dict[ObjectRef, dict[str, Any]], allow_cross_namespace: bool
) -> RouteReport:
    """`incidentio-operator route`'s answer over the live rules and destinations of the alert's namespace.

    Destinations of other namespaces that the rules name (routed only with --allow-cross-namespace) are
    read one by one and added to `destinations`.
    """
    rules = cluster.list(RULES, alert.ref.namespace)
    report = route_alert(
        alert, live_manifests([*rules, *destinations.values()]), allow_cross_namespace=allow_cross_namespace
    )
    elsewhere = [entry.destination for entry in report.routing.routes if entry.destination not in destinations]
    for ref in elsewhere:
        found = cluster.find(DESTINATIONS, ref.namespace, ref.name)
        if found is not None:
            destinations[ref] = found
    if any(ref in destinations for ref in elsewhere):
        report = route_alert(
            alert, live_manifests([*rules, *destinations.values()]), allow_cross_namespace=allow_cross_namespace
        )
    return report


def explain(cluster: Cluster, name: str, out: TextIO, *, allow_cross_namespace: bool = False) -> int:
    """Print what the operator does with DataAlert `name` of the cluster's namespace, and why. Exit status 0."""
    body = cluster.get(ALERTS, cluster.namespace, name)
    alert = DataAlert.from_body(body)
    status = body.get("status") or {}
    destinations = {
        ObjectRef.of(found): found for found in cluster.list(DESTINATIONS, alert.ref.namespace) if found.get("metadata")
    }
    lines = [_headline(alert, body), _ready_line(status)]
    report: RouteReport | None = None
    try:
        report = route_live(cluster, alert, destinations, allow_cross_namespace)
    except RouteError as error:
        lines.append(f"The operator cannot route it: {error}")
    deliveries = [d for d in status.get("deliveries") or () if isinstance(d, Mapping)]
    if report is not None:
        lines += _routing_lines(report, status)
        routed = {entry.destination for entry in report.routing.routes}
        for entry in report.routing.routes:
            lines += _destination_lines(entry.destination, entry.rules, destinations.get(entry.destination))
            lines += _delivery_lines(_of_destination(deliveries, entry.destination, alert.ref.namespace))
        earlier = [d for d in deliveries if _destination_of(d, alert.ref.namespace) not in routed]
        if earlier:
            lines += ["", "Deliveries to destinations no rule names now:"]
            for ref in sorted({_destination_of(d, alert.ref.namespace) for d in earlier}):
                lines.append(f"  IncidentIoDestination {ref}")
                lines += _delivery_lines(_of_destination(earlier, ref, alert.ref.namespace))
    print("\n".join(lines), file=out)
    return 0


def _headline(alert: DataAlert, body: Mapping[str, Any]) -> str:
    spec = body.get("spec") or {}
    return (
        f"DataAlert {alert.ref}: {spec.get('eventType', '?')}, severity {spec.get('severity', '?')}, "
        f"state {spec.get('state', 'triggered')}"
    )


def _ready_line(status: Mapping[str, Any]) -> str:
    ready = condition_of(status, "Ready")
    if ready is None:
        return "  Ready: not reported yet (is the operator running?)"
    return f"  Ready: {ready.get('status')} ({ready.get('reason')}: {ready.get('message')})"


def _routing_lines(report: RouteReport, status: Mapping[str, Any]) -> list[str]:
    lines = [f"note: {note}" for note in report.notes]
    for rule, error in report.skipped_rules.items():
        lines.append(f"rule {rule} is ignored: its spec is invalid: {error}")
    matched = report.routing.matched_rules
    lines.append(f"Matching rules: {', '.join(matched)}" if matched else "No rule matches.")
    reported = tuple(str(name) for name in status.get("matchedRules") or ())
    if "matchedRules" in status and tuple(sorted(reported)) != tuple(sorted(matched)):
        lines.append(
            f"note: the operator's status names {', '.join(reported) or 'no rule'}: "
            "it has not reconciled the rules as they are now"
        )
    if report.mismatches:
        lines.append("Rules that do not match:")
        lines += [f"  {rule}: {reason}" for rule, reason in report.mismatches.items()]
    for refused in report.routing.refused:
        lines.append(f"Refused: rule {refused.rule} names {refused.destination}: {refused.reason}")
    return lines


def _destination_lines(ref: ObjectRef, rules: Sequence[str], body: Mapping[str, Any] | None) -> list[str]:
    header = f"IncidentIoDestination {ref} (rules: {', '.join(rules)})"
    if body is None:
        return ["", f"{header}: not found"]
    destination = Destination.from_body(body)
    if destination.ready:
        ready = condition_of(destination.status, "Ready") or {}
        return ["", f"{header}: Ready ({ready.get('reason')})"]
    return ["", f"{header}: not Ready ({destination.not_ready_reason})"]


def _destination_of(delivery: Mapping[str, Any], alert_namespace: str) -> ObjectRef:
    """The status names a destination of the alert's namespace by name, another by namespace/name."""
    namespace, _, name = str(delivery.get("destination") or "").rpartition("/")
    return ObjectRef(namespace or alert_namespace, name)


def _of_destination(
    deliveries: Iterable[Mapping[str, Any]], ref: ObjectRef, alert_namespace: str
) -> list[Mapping[str, Any]]:
    return [d for d in deliveries if _destination_of(d, alert_namespace) == ref]


def _delivery_lines(deliveries: Sequence[Mapping[str, Any]]) -> list[str]:
    if not deliveries:
        return ["  no delivery yet"]
    lines = []
    for delivery in sorted(deliveries, key=lambda d: int(d.get("epoch") or 0)):
        parts = [f"  epoch {delivery.get('epoch')}: {delivery.get('state')}"]
        if delivery.get("reference"):
            parts.append(f"incident {delivery['reference']}")
        if delivery.get("deduplicationKey"):
            parts.append(f"alert event, deduplication key {delivery['deduplicationKey']}")
        if delivery.get("permalink"):
            parts.append(str(delivery["permalink"]))
        parts.append(f"attempts {delivery.get('attempts', 0)}")
        if delivery.get("waitingFor"):
            parts.append(f"waiting: {delivery['waitingFor']}")
        if delivery.get("nextAttemptAt"):
            parts.append(f"next attempt at {delivery['nextAttemptAt']}")
        lines.append(", ".join(parts))
        if delivery.get("lastError"):
            lines.append(f"    last error: {delivery['lastError']}")
    return lines
