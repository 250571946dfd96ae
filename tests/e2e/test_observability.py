"""What a platform team watches: Prometheus metrics, Kubernetes Events, structured logs."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import httpx

from incidentio_operator.standins.simulator import ApiKeyConfig, SimulatorConfig
from tests.e2e import objects as o
from tests.e2e.test_lifecycle import ALERTS, DESTINATIONS, NS, open_delivery, setup_team
from tests.harness import DEMO_KEY, FULL_ROLES, Environment, wait_for


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def scrape(port: int) -> dict[str, float]:
    """Prometheus text format, as name{labels} -> value."""
    samples: dict[str, float] = {}
    for line in httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def test_metrics_count_what_happened(env: Environment) -> None:
    port = free_port()
    env.start_operator("--metrics-port", str(port))
    setup_team(env)
    for name in ("one", "two"):
        env.client.apply(o.alert(name))
    open_delivery(env, "one")
    open_delivery(env, "two")
    env.client.apply(o.alert("one", state="resolved"))
    env.wait_reason(ALERTS, NS, "one", "Closed")
    label = f'destination="{NS}/incidentio"'
    samples = wait_for(
        lambda: (s := scrape(port)) and s.get(f"incidentio_operator_incidents_closed_total{{{label}}}") == 1 and s,
        what="the close to be counted",
    )
    assert samples[f"incidentio_operator_incidents_created_total{{{label}}}"] == 2
    created_ok = sum(1 for r in env.requests("create_incident") if r.status == 200)
    assert (
        samples['incidentio_operator_incidentio_requests_total{code="200",operation="create_incident"}'] == created_ok
    )
    assert samples['incidentio_operator_incidentio_requests_total{code="200",operation="edit_incident"}'] == 1
    assert samples[f'incidentio_operator_connection_tests_total{{{label},result="Verified"}}'] >= 1
    assert samples['incidentio_operator_incidentio_request_duration_seconds_count{operation="identity"}'] >= 1
    assert samples["incidentio_operator_deliveries_pending"] == 0


def test_events_tell_the_story_on_the_objects(env: Environment) -> None:
    env.start_operator()
    setup_team(env)
    env.client.apply(o.alert("orders"))
    delivery = open_delivery(env, "orders")
    env.client.apply(o.alert("orders", state="resolved"))
    env.wait_reason(ALERTS, NS, "orders", "Closed")

    def reasons() -> dict[str, list[str]]:
        found: dict[str, list[str]] = {}
        for event in env.client.events(NS):
            involved = event["involvedObject"]
            found.setdefault(f"{involved['kind']}/{involved['name']}", []).append(
                f"{event['reason']}: {event['message']}"
            )
        return found

    events = wait_for(lambda: (r := reasons()) and len(r.get("DataAlert/orders", [])) >= 2 and r, what="events")
    assert any(e.startswith("ConnectionTestSucceeded: Verified") for e in events["IncidentIoDestination/incidentio"])
    assert f"IncidentCreated: Incident {delivery['reference']} opened ({NS}/incidentio)" in events["DataAlert/orders"]
    assert f"IncidentClosed: Incident {delivery['reference']} closed ({NS}/incidentio)" in events["DataAlert/orders"]


def test_a_refused_delivery_shows_incidentios_message_in_status_and_event(tmp_path: Path) -> None:
    config = SimulatorConfig(
        keys={DEMO_KEY: ApiKeyConfig(name="demo", roles=FULL_ROLES)}, rate_limit_per_minute=None, severity_required=True
    )
    env = Environment(tmp_path, config)
    try:
        env.start_operator()
        setup_team(env)
        env.client.apply(o.alert("orders"))
        condition = env.wait_reason(ALERTS, NS, "orders", "DeliveryFailed")
        assert "A severity is required to open an incident (severity_id)" in condition["message"]
        assert "request_id" in condition["message"]
        (delivery,) = env.status(ALERTS, NS, "orders")["deliveries"]
        assert delivery["state"] == "Failed" and delivery["attempts"] == 1
        events = wait_for(
            lambda: [e for e in env.client.events(NS) if e["reason"] == "DeliveryFailed"], what="DeliveryFailed event"
        )
        assert events[0]["type"] == "Warning" and "severity" in events[0]["message"]
        # Not retried in a loop: the refusal stands until the alert or the destination changes.
        creates = len(env.requests("create_incident"))
        env.client.patch(
            o.GV, DESTINATIONS, NS, "incidentio", {"spec": {"incident": {"severity": {"default": "Minor"}}}}
        )
        open_delivery(env, "orders")
        assert len(env.requests("create_incident")) == creates + 1
    finally:
        env.close()


def test_json_logs_name_the_object_and_never_the_key(env: Environment) -> None:
    operator = env.start_operator("--log-format", "json")
    setup_team(env)
    env.client.apply(o.alert("orders"))
    open_delivery(env, "orders")
    operator.stop()
    lines = [line for line in env.operator_log.splitlines() if line.strip()]
    records = [json.loads(line) for line in lines]
    assert all("message" in record for record in records)
    assert DEMO_KEY not in env.operator_log
