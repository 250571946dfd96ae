"""``kubectl armor incidents``: a table of the alerts whose incidents are open in incident.io, across namespaces."""

from __future__ import annotations

import datetime
from collections.abc import Iterable, Mapping
from typing import Any, TextIO

from incidentio_operator.kubectl.cluster import ALERTS, Cluster
from incidentio_operator.offline.tables import age, format_rows

# Delivery states whose incident is not closed in incident.io: Closing is on its way, LeftOpen was left
# open on purpose (no closedStatusId), and a Failed delivery that names an incident failed to close it.
OPEN_STATES = frozenset({"Open", "Closing", "LeftOpen", "Failed"})
HEADER = ("NAMESPACE", "ALERT", "STATE", "DESTINATION", "DELIVERY", "INCIDENT", "OPENED", "PERMALINK")


def open_incident_rows(alerts: Iterable[Mapping[str, Any]], now: datetime.datetime) -> list[tuple[str, ...]]:
    """One row per delivery with an incident not closed: the alert, its state, the destination and the incident."""
    rows = []
    for body in alerts:
        meta, spec = body.get("metadata") or {}, body.get("spec") or {}
        for delivery in (body.get("status") or {}).get("deliveries") or ():
            if not isinstance(delivery, Mapping) or delivery.get("state") not in OPEN_STATES:
                continue
            if not delivery.get("incidentId"):
                continue
            rows.append(
                (
                    str(meta.get("namespace", "")),
                    str(meta.get("name", "")),
                    str(spec.get("state", "triggered")),
                    str(delivery.get("destination", "")),
                    str(delivery.get("state")),
                    str(delivery.get("reference") or delivery.get("incidentId")),
                    age(delivery.get("openedAt"), now) if delivery.get("openedAt") else "",
                    str(delivery.get("permalink") or ""),
                )
            )
    return sorted(rows)


def list_incidents(cluster: Cluster, namespace: str | None, out: TextIO) -> int:
    """Print the table for `namespace`, or every namespace when None. Exit status 0."""
    rows = open_incident_rows(cluster.list(ALERTS, namespace), datetime.datetime.now(datetime.UTC))
    if not rows:
        where = f"in namespace {namespace}" if namespace else "in any namespace"
        print(f"No open incidents {where}.", file=out)
        return 0
    print(format_rows([HEADER, *rows]), file=out)
    return 0
