"""``route --output json``: the route report as one JSON object, for scripts and CI."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from incidentio_operator.commands.route_events import event_json

if TYPE_CHECKING:
    from incidentio_operator.commands.route import RouteReport


def render_json(report: RouteReport) -> dict[str, Any]:
    spec, ref = report.alert_spec, report.alert.ref
    return {
        "alert": {
            "namespace": ref.namespace,
            "name": ref.name,
            "eventType": spec.event_type,
            "severity": spec.severity,
            "state": spec.state,
        },
        "matchedRules": list(report.routing.matched_rules),
        "deliveries": [
            {
                "destination": {"namespace": d.destination.namespace, "name": d.destination.name},
                "rules": list(d.rules),
                "declared": d.declared,
                "sent": d.sent,
                "note": d.note,
                "deliveryMode": "AlertEvent" if d.alert_event is not None else "Incident",
                **({"alertEvent": event_json(d.alert_event, d.alert_source)} if d.alert_event is not None else {}),
                "incident": {
                    "name": d.incident.name,
                    "summary": d.incident.summary,
                    "severity": d.incident.severity,
                    "mode": d.incident.mode,
                    "visibility": d.incident.visibility,
                },
            }
            for d in report.deliveries
        ],
        "refused": [
            {"rule": r.rule, "destination": str(r.destination), "reason": r.reason} for r in report.routing.refused
        ],
        "unmatchedRules": report.mismatches,
        "invalidRules": report.skipped_rules,
        "notes": report.notes,
    }
