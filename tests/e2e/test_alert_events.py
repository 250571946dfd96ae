"""Delivery mode AlertEvent end to end: alert events to the simulator's HTTP alert source, one alert per key."""

from __future__ import annotations

import io
from typing import Any

from incidentio_operator.kubectl.cli import run
from incidentio_operator.standins.simulator import AlertSourceConfig, HeartbeatSettings
from tests.e2e import objects as o
from tests.e2e.test_observability import free_port, scrape
from tests.harness import DEMO_KEY, Environment, assert_secret_nowhere, put_at_once, wait_for

DESTINATIONS, ALERTS = "incidentiodestinations", "dataalerts"
NS = o.NS
SOURCE_ID = "01GW2G3V0S59R238FAHPDS1R66"
TOKEN = "alert-source-token-7d1f"
FAST = ("--test-retry-base", "1", "--delivery-retry-base", "1")


def alert_event_destination(base_url: str, *, api_key: bool = False, on_create: str = "Verify") -> dict[str, Any]:
    body = o.destination(base_url, on_create=on_create)
    spec = body["spec"]
    if not api_key:
        del spec["apiKeySecretRef"]
    spec["delivery"] = {"mode": "AlertEvent"}
    spec["alertSource"] = {"configId": SOURCE_ID, "tokenSecretRef": {"name": "alert-source", "key": "token"}}
    return body


def setup_team(env: Environment, *, token: str | None = TOKEN, **destination: Any) -> None:
    env.sim.set_alert_source(AlertSourceConfig(SOURCE_ID, "AnomalyArmor", TOKEN))
    env.client.apply(o.namespace())
    if token is not None:
        env.client.apply(o.secret(token, name="alert-source", field="token"))
    env.client.apply(alert_event_destination(env.sim.url, **destination))
    env.client.apply(o.rule("breaking", ["incidentio"], eventTypes=["schema_change"]))


def delivery_of(env: Environment, name: str) -> dict[str, Any]:
    status = env.status(ALERTS, NS, name)
    (delivery,) = [d for d in status["deliveries"] if d["epoch"] == status["epoch"]]
    return dict(delivery)


def alerts_for(env: Environment, key: str) -> list[Any]:
    return [alert for alert in env.sim.alerts(SOURCE_ID) if alert.deduplication_key == key]


def test_trigger_fires_one_alert_and_resolve_resolves_the_same_key(env: Environment) -> None:
    env.start_operator(*FAST)
    setup_team(env)
    env.wait_ready(DESTINATIONS, NS, "incidentio")
    env.client.apply(o.alert("orders"))
    env.wait_ready(ALERTS, NS, "orders")
    delivery = delivery_of(env, "orders")
    key = delivery["deduplicationKey"]
    assert env.status(DESTINATIONS, NS, "incidentio")["alertSource"] == {
        "configId": SOURCE_ID,
        "tokenVersion": env.status(DESTINATIONS, NS, "incidentio")["secretVersion"],
    }
    assert delivery["mode"] == "AlertEvent" and delivery["state"] == "Firing" and delivery["attempts"] == 1
    (alert,) = alerts_for(env, key)
    assert alert.status == "firing" and alert.title == "[AnomalyArmor] Column removed from orders"
    assert alert.metadata["data_alert"] == {"namespace": NS, "name": "orders", "labels": {}}
    assert env.incidents() == [], "mode AlertEvent opens no incident itself"
    out = io.StringIO()
    assert run(["why", "orders", "-n", NS, "--kubeconfig", str(env.kubeconfig)], out, io.StringIO()) == 0
    assert f"epoch 1: Firing, alert event, deduplication key {key}, attempts 1" in out.getvalue()

    env.client.apply(o.alert("orders", state="resolved"))
    env.wait_reason(ALERTS, NS, "orders", "Resolved")
    assert delivery_of(env, "orders")["state"] == "Resolved"
    (alert,) = alerts_for(env, key)
    assert alert.status == "resolved" and alert.event_count == 2
    assert [e.status for e in env.sim.alert_events(SOURCE_ID)] == ["firing", "resolved"]
    # Nothing left to resolve: the alert lets go of its finalizer.
    wait_for(lambda: not (env.get(ALERTS, NS, "orders") or {})["metadata"].get("finalizers"), what="finalizer gone")
    assert_secret_nowhere(env, TOKEN)


def test_lost_responses_and_a_restart_still_give_one_alert_per_key(env: Environment) -> None:
    operator = env.start_operator(*FAST)
    setup_team(env)
    env.wait_ready(DESTINATIONS, NS, "incidentio")
    # incident.io takes the event but the answer never arrives: the retry goes out under the same key.
    env.sim.faults.lose_response_next(2, operation="create_alert_event")
    env.client.apply(o.alert("orders"))
    env.wait_ready(ALERTS, NS, "orders")
    key = delivery_of(env, "orders")["deduplicationKey"]
    assert len(env.sim.alert_events(SOURCE_ID)) == 3
    (alert,) = alerts_for(env, key)
    assert alert.status == "firing" and alert.event_count == 3

    operator.stop()
    env.start_operator(*FAST)
    env.client.apply(o.alert("orders", state="dismissed"))
    env.wait_reason(ALERTS, NS, "orders", "Resolved")
    (alert,) = alerts_for(env, key)
    assert alert.status == "resolved"
    assert len(env.sim.alerts(SOURCE_ID)) == 1


def test_rate_limited_events_are_paced_away_with_none_lost(env: Environment) -> None:
    port = free_port()
    env.sim.config.alert_events_per_minute = 3
    env.sim.config.alert_events_refill_per_second = 0.5
    env.start_operator(*FAST, "--metrics-port", str(port))
    setup_team(env)
    env.wait_ready(DESTINATIONS, NS, "incidentio")
    names = [f"table-{number}" for number in range(12)]
    put_at_once(env, [o.alert(name) for name in names])
    for name in names:
        env.wait_ready(ALERTS, NS, name, timeout=90)
    keys = {delivery_of(env, name)["deduplicationKey"] for name in names}
    assert len(keys) == len(names)
    assert {alert.deduplication_key for alert in env.sim.alerts(SOURCE_ID)} == keys
    assert all(alert.status == "firing" for alert in env.sim.alerts(SOURCE_ID))
    metrics = scrape(port)
    refused = metrics.get('incidentio_operator_incidentio_requests_total{code="429",operation="create_alert_event"}', 0)
    assert refused > 0, "the simulator's per-source limit was reached"
    assert metrics["incidentio_operator_rate_limit_waits_total"] > 0, "the source's bucket paused for Retry-After"
    firing = 'incidentio_operator_alert_events_total{destination="team-a/incidentio",status="firing"}'
    assert metrics[firing] == len(names)


def test_a_missing_then_refused_token_is_a_clear_not_ready_reason_until_fixed(env: Environment) -> None:
    env.start_operator(*FAST)
    setup_team(env, token=None)
    condition = env.wait_reason(DESTINATIONS, NS, "incidentio", "NoAlertSourceToken")
    assert condition["status"] == "False" and "Secret alert-source (key token)" in condition["message"]
    env.client.apply(o.alert("orders"))
    waiting = env.wait_reason(ALERTS, NS, "orders", "WaitingForDestination")
    assert waiting["status"] == "False" and "NoAlertSourceToken" in waiting["message"]

    env.client.apply(o.secret("not-the-token", name="alert-source", field="token"))
    refused = env.wait_reason(DESTINATIONS, NS, "incidentio", "AlertSourceTokenRefused", timeout=30)
    assert refused["status"] == "False"
    assert f"refused the token of alert source {SOURCE_ID}" in refused["message"]
    assert "spec.alertSource.tokenSecretRef" in refused["message"]
    waiting = env.wait_message(ALERTS, NS, "orders", "AlertSourceTokenRefused")
    assert waiting["status"] == "False"
    assert env.sim.alerts(SOURCE_ID) == []

    env.client.apply(o.secret(TOKEN, name="alert-source", field="token"))
    env.wait_ready(ALERTS, NS, "orders", timeout=30)
    assert len(env.sim.alerts(SOURCE_ID)) == 1
    assert_secret_nowhere(env, TOKEN, "not-the-token")


def test_the_connection_test_checks_the_source_with_an_api_key_and_sends_a_test_event(env: Environment) -> None:
    env.start_operator(*FAST)
    env.client.apply(o.namespace())
    env.client.apply(o.secret(DEMO_KEY))
    setup_team(env, api_key=True, on_create="CreateTestIncident")
    ready = env.wait_ready(DESTINATIONS, NS, "incidentio")
    last = ready["lastTest"]
    assert last["result"] == "Succeeded" and last["mode"] == "CreateTestIncident"
    (test_alert,) = env.sim.alerts(SOURCE_ID)
    assert test_alert.status == "resolved" and test_alert.title == "[AnomalyArmor] Connection test"
    assert test_alert.deduplication_key in last["message"] and "('AnomalyArmor') is an HTTP source" in last["message"]
    assert [r.status for r in env.requests("show_alert_source")] == [200]
    assert last["deduplicationKey"] == test_alert.deduplication_key
    assert ready["deliveryMode"] == "AlertEvent"
    source = ready["alertSource"]
    assert (source["configId"], source["name"], source["sourceType"]) == (SOURCE_ID, "AnomalyArmor", "http")

    env.sim.set_alert_source(
        AlertSourceConfig("01HEARTBEAT0000000000000000", "Pipeline", "hb", "heartbeat", HeartbeatSettings(60))
    )
    body = alert_event_destination(env.sim.url, api_key=True)
    body["spec"]["alertSource"]["configId"] = "01HEARTBEAT0000000000000000"
    env.client.apply(body)
    wrong = env.wait_reason(DESTINATIONS, NS, "incidentio", "AlertSourceNotHTTP")
    assert "'heartbeat', not 'http'" in wrong["message"]
    body["spec"]["alertSource"]["configId"] = "01NOSUCHSOURCE0000000000000"
    env.client.apply(body)
    missing = env.wait_reason(DESTINATIONS, NS, "incidentio", "AlertSourceNotFound")
    assert "01NOSUCHSOURCE0000000000000" in missing["message"]
