"""``demo --mode alert-event``: the alert's life delivered as incident.io alert events (examples/alert-events/)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import yaml

if TYPE_CHECKING:
    from incidentio_operator.commands.demo import Demo
    from incidentio_operator.standins.simulator import SimulatorConfig

# The alert sources of examples/alert-events/ (its destination's config IDs and its Secrets' tokens).
ALERT_SOURCE_ID = "01GW2G3V0S59R238FAHPDS1R66"
HEARTBEAT_ID = "01GW2G3V0S59R238FAHPDS1R67"
TOKENS = {ALERT_SOURCE_ID: "sim-alert-source-token", HEARTBEAT_ID: "sim-heartbeat-token"}
NAMESPACE = "data-platform-events"
DESTINATION = "incidentio-alert-events"
ALERT = "orders-column-removed"


def add_alert_sources(config: SimulatorConfig) -> None:
    """The HTTP alert source and the heartbeat source the example destination names."""
    from incidentio_operator.standins.simulator import AlertSourceConfig, HeartbeatSettings

    config.alert_sources[ALERT_SOURCE_ID] = AlertSourceConfig(ALERT_SOURCE_ID, "AnomalyArmor", TOKENS[ALERT_SOURCE_ID])
    heartbeat = HeartbeatSettings(interval_seconds=60, grace_period_seconds=30)
    config.alert_sources[HEARTBEAT_ID] = AlertSourceConfig(
        HEARTBEAT_ID, "incidentio-operator", TOKENS[HEARTBEAT_ID], "heartbeat", heartbeat
    )


def walk_through(demo: Demo) -> None:
    """Steps 2 to 5 in mode AlertEvent: the destination, a rule, an alert fired once, then resolved by its key."""
    demo.namespace = NAMESPACE
    demo.step("2. An HTTP alert source in incident.io: a Secret with its token, and a destination in mode AlertEvent")
    for name in ("namespace.yaml", "secret.yaml", "destination.yaml"):
        demo.apply(f"alert-events/{name}")
    destination = demo.ready("incidentiodestinations", DESTINATION)
    demo.table("incidentiodestinations")
    demo.say(f"connection test: {destination['status']['lastTest']['message']}")

    demo.step("3. A rule naming that destination, and a detector's alert")
    demo.apply("alert-events/rules.yaml")
    demo.ready("alertrules", "production-schema-alert-events")
    demo.apply("alert-events/alert.yaml")
    alert = demo.ready("dataalerts", ALERT)
    demo.table("dataalerts")
    (delivery,) = alert["status"]["deliveries"]
    demo.say(
        f"delivery: {delivery['mode']}, {delivery['state']}, deduplication key {delivery['deduplicationKey']}, "
        f"{delivery['attempts']} attempt(s)"
    )
    show_alerts(demo)

    demo.step("4. The alert resolves: the same deduplication key goes out as resolved")
    resolve(demo)
    demo.ready("dataalerts", ALERT, reason="Resolved")
    demo.table("dataalerts")
    show_alerts(demo)
    statuses = [event.status for event in demo.sim.alert_events(ALERT_SOURCE_ID)]
    demo.say(f"alert events received: {', '.join(statuses)}; no incident opened by the operator itself.")
    demo.say("The destination's heartbeat is pinged every minute while the operator is healthy (status.heartbeat).")


def resolve(demo: Demo) -> None:
    """The example alert applied again with state resolved, as the detector would report it."""
    text = (demo.examples / "alert-events" / "alert.yaml").read_text(encoding="utf-8")
    demo.command(
        f'kubectl -n {NAMESPACE} patch dataalert {ALERT} --type merge -p \'{{"spec":{{"state":"resolved"}}}}\''
    )
    body = yaml.safe_load(text.replace("state: triggered", "state: resolved"))
    demo.client.apply(body)
    demo.say(f"dataalert/{ALERT} patched")


def show_alerts(demo: Demo) -> None:
    demo.command(f"curl {demo.sim.url}/_simulator/alert_sources/{ALERT_SOURCE_ID}/alerts")
    for alert in demo.sim.alerts(ALERT_SOURCE_ID):
        demo.say(f"alert {alert.id}: {alert.status}, {alert.event_count} event(s), title {alert.title!r}")
        demo.say(f"  deduplication key {alert.deduplication_key}")
        demo.say(f"  metadata {json.dumps(alert.metadata, sort_keys=True)}")
