"""``kubectl armor uninstall``: what would stay open in incident.io without the operator, and releasing its finalizers.

The operator holds a finalizer on a DataAlert while one of its incidents may still need closing, and on an
IncidentIoDestination while alerts hold incidents through it (README, Uninstall). With the operator gone
those finalizers keep namespaces and CRDs from being deleted; this command shows what they protect and,
when told to, removes them, leaving the incidents listed open in incident.io for a person to close.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any, TextIO

from incidentio_operator.api.alert import FINALIZER as ALERT_FINALIZER
from incidentio_operator.api.destination import DESTINATION_FINALIZER
from incidentio_operator.kubectl.cluster import ALERTS, DESTINATIONS, KINDS, Cluster
from incidentio_operator.kubectl.incidents import HEADER, open_incident_rows
from incidentio_operator.offline.tables import format_rows

OURS = {ALERTS: ALERT_FINALIZER, DESTINATIONS: DESTINATION_FINALIZER}


def held(bodies: list[dict[str, Any]], finalizer: str) -> list[dict[str, Any]]:
    """The objects among ``bodies`` that carry ``finalizer``."""
    return [b for b in bodies if finalizer in ((b.get("metadata") or {}).get("finalizers") or ())]


def uninstall(cluster: Cluster, namespace: str | None, out: TextIO, *, release: bool) -> int:
    """Print the open incidents and the objects holding our finalizers; with ``release``, remove the finalizers.

    Exit status: 0 when nothing is held (or everything was released), 1 when objects still hold the
    operator's finalizers (run again with ``release`` once the operator is stopped for good).
    """
    alerts = cluster.list(ALERTS, namespace)
    rows = open_incident_rows(alerts, datetime.datetime.now(datetime.UTC))
    if rows:
        print(
            "Incidents that would stay open in incident.io (close them there, or let the operator close them):",
            file=out,
        )
        print(format_rows([HEADER, *rows]), file=out)
    else:
        print("No incident would stay open in incident.io.", file=out)
    holding = {
        ALERTS: held(alerts, ALERT_FINALIZER),
        DESTINATIONS: held(cluster.list(DESTINATIONS, namespace), DESTINATION_FINALIZER),
    }
    count = sum(len(bodies) for bodies in holding.values())
    if count == 0:
        print("No object holds the operator's finalizers: the CRDs and namespaces can be deleted.", file=out)
        return 0
    for plural, bodies in holding.items():
        for body in bodies:
            meta = body["metadata"]
            verb = "released" if release else "held by"
            print(f"{KINDS[plural]} {meta['namespace']}/{meta['name']}: {verb} {OURS[plural]}", file=out)
            if release:
                _release(cluster, plural, meta, OURS[plural])
    if not release:
        print(
            f"{count} objects hold the operator's finalizers. With the operator stopped for good, run "
            "`kubectl armor uninstall --release-finalizers` to release them.",
            file=out,
        )
        return 1
    return 0


def _release(cluster: Cluster, plural: str, meta: Mapping[str, Any], finalizer: str) -> None:
    # The resourceVersion makes the merge patch conditional: a finalizer list changed meanwhile is not overwritten.
    remaining = [f for f in meta.get("finalizers") or () if f != finalizer]
    patch = {"metadata": {"finalizers": remaining, "resourceVersion": meta["resourceVersion"]}}
    cluster.patch(plural, meta["namespace"], meta["name"], patch)
