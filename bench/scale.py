"""50,000 settled alerts: a restart over them, then the steady load with them present."""

from __future__ import annotations

import copy
import gc
import json
from pathlib import Path
from typing import Any

from tests.e2e import objects
from tests.harness import wait_for

from bench import detector as bulk
from bench.cluster import ALERTS, DESTINATION, NS, RULE, Cluster, alert_body
from bench.common import UNLIMITED, Figures, Sizes, admitted_text, clone_of, restart_figures, settle, started
from bench.steady import steady_load


def scale(workdir: Path, sizes: Sizes) -> Figures:
    cluster = started(Cluster(workdir), *UNLIMITED)
    try:
        template = _settled_template(cluster)
        assert cluster.operator is not None
        cluster.operator.stop()
        _put_settled(cluster, template, sizes.scale)
        # The stand-in holds the 50,000 objects in this (the bench's) process: out of the cycle collector's
        # view, its full collections (0.5-1.4 s each, measured with gc.callbacks) no longer stall the API
        # the operator is measured against; a real API server has no such pauses.
        gc.collect()
        gc.freeze()
        figures = restart_figures(cluster, *UNLIMITED)
        steady = steady_load(cluster, sizes)
        return {**figures, **{f"steady_{key}": value for key, value in steady.items()}}
    finally:
        cluster.close()
        gc.unfreeze()


TEMPLATE = "template"


def _settled_template(cluster: Cluster) -> dict[str, Any]:
    """One alert taken through the operator from trigger to closed incident: the status every clone carries."""
    bulk.burst(cluster.env.kube.url, "create", TEMPLATE, 1)
    cluster.wait_incidents(opened=1)
    bulk.burst(cluster.env.kube.url, "resolve", TEMPLATE, 1)
    cluster.wait_incidents(opened=1, closed=1)
    settle(cluster)
    name = f"{TEMPLATE}-00000"

    def settled() -> dict[str, Any] | None:
        body = cluster.env.kube.get_object(objects.GV, ALERTS, NS, name) or {}
        status = body.get("status") or {}
        ready = [c for c in status.get("conditions") or () if c.get("type") == "Ready" and c.get("status") == "True"]
        destination = cluster.env.kube.get_object(objects.GV, "incidentiodestinations", NS, DESTINATION) or {}
        # Settled through and through: the destination, holding no incident any more, has let go too.
        free = not (destination.get("metadata") or {}).get("finalizers")
        return body if ready and free and not body["metadata"].get("finalizers") else None

    return wait_for(settled, timeout=60, what="the template alert settled")


def _put_settled(cluster: Cluster, template: dict[str, Any], count: int) -> None:
    """``count`` resolved alerts with the template's status, each naming its own alert and incident.

    Their incidents exist only in their statuses (the simulator never saw them): a settled alert's closed
    incident is never read again, which is what the restart is to show.
    """
    name = template["metadata"]["name"]
    text = json.dumps(template["status"])
    incident_ids = {d["incidentId"] for d in template["status"].get("deliveries") or () if d.get("incidentId")}

    async def write() -> None:
        first = ""
        admitted = ""
        for i in range(count):
            clone = f"settled-{i:05d}"
            status_text = text.replace(name, clone)
            for incident_id in incident_ids:
                status_text = status_text.replace(incident_id, f"01SETTLED{i:017d}")
            status = json.loads(status_text)
            # Created already resolved, each clone is at generation 1 where the template reached 2.
            status["observedGeneration"] = 1
            for condition in status.get("conditions") or ():
                condition["observedGeneration"] = 1
            if first:
                cluster.env.kube.restore_object({**clone_of(admitted, first, clone), "status": status})
                continue
            # The first is admitted as any write is (defaults applied); the others are its copies.
            body = copy.deepcopy(alert_body(clone))
            body["spec"]["state"] = "resolved"
            first, admitted = clone, admitted_text(cluster.env.kube.put_object({**body, "status": status}))

    cluster.env.loop.run(write(), timeout=1800)
    # The rule counts the alerts it matches (the clones and the template), as the operator would have left it.
    rule = cluster.env.kube.get_object(objects.GV, "alertrules", NS, RULE) or {}
    status = {**(rule.get("status") or {}), "matchedAlerts": count + 1}
    cluster.env.kube.put_object({**rule, "status": status})
