"""Delivery mode AlertEvent: the firing and resolved events, their deduplication key, the status around them."""

from __future__ import annotations

import datetime
from dataclasses import replace
from typing import Any

from incidentio_operator.api import AlertRule, DataAlert, Destination, ObjectRef
from incidentio_operator.api.alertsource import AlertSourceRef, SecretKeyRef
from incidentio_operator.controller.admissions import AdmissionLedger
from incidentio_operator.decisions import alertsource_test as judge
from incidentio_operator.decisions.alertevents import alert_metadata, connection_test_events, deduplication_key
from incidentio_operator.decisions.delivery import Action, AlertContext, Outcome, SendAlertEvent, closes, plan, settle
from incidentio_operator.decisions.delivery.model import Delivery
from incidentio_operator.decisions.delivery.retention import settled
from incidentio_operator.decisions.payloads import idempotency_key
from incidentio_operator.decisions.routing import route
from incidentio_operator.decisions.suppression import NoiseFacts
from incidentio_operator.incidentio import AlertEvent, AlertSource

from .factories import (
    DESTINATION,
    NAMESPACE,
    alert_body,
    destination_body,
    incidentio_error,
    rule_body,
    with_spec,
    with_status,
)
from .test_delivery import ALERT_UID, DESTINATION_REF, Responder, failing, later, ready, reconcile
from .test_noise_plan import MONDAY_8, SATURDAY_NOON, WEEKDAYS

SOURCE_ID = "01GW2G3V0S59R238FAHPDS1R66"


def alert_event_destination(**overrides: Any) -> dict[str, Any]:
    """The factories' destination in delivery mode AlertEvent, with an alert source and no API key."""
    body = destination_body()
    spec = {key: value for key, value in body["spec"].items() if key != "apiKeySecretRef"}
    spec.update(
        delivery={"mode": "AlertEvent"},
        alertSource={"configId": SOURCE_ID, "tokenSecretRef": {"name": "alert-source", "key": "token"}},
        **overrides,
    )
    return {**body, "spec": spec}


WORLD: dict[str, Any] = {"destinations": [alert_event_destination()]}


def accepting(action: Action) -> Outcome:
    """incident.io answering every alert event with 202."""
    assert isinstance(action, SendAlertEvent)
    return Outcome(action.label, action.epoch, event_status=action.event.status)


def sent(step: Any) -> AlertEvent:
    (action,) = step.plan.actions
    assert isinstance(action, SendAlertEvent)
    return action.event


def firing(alert: dict[str, Any] | None = None, respond: Responder = accepting) -> Any:
    return reconcile(alert or alert_body(), respond, **WORLD)


def test_a_triggered_alert_sends_one_firing_event_under_a_key_recorded_before_the_call() -> None:
    step = reconcile(alert_body(), None, **WORLD)
    event = sent(step)
    key = deduplication_key(ALERT_UID, DESTINATION_REF, 1)
    assert event.status == "firing" and event.deduplication_key == key
    assert event.title == "[AnomalyArmor] Column customer_id removed from orders"
    assert event.description is not None and "Rules: production-breaking-changes" in event.description
    recorded = step.delivery
    assert recorded["mode"] == "AlertEvent" and recorded["deduplicationKey"] == key
    assert recorded["state"] == "Pending" and recorded["attempts"] == 1
    assert "idempotencyKey" not in recorded
    assert step.condition()["message"] == "sending alert events to incident.io"
    assert step.plan.needs_finalizer


def test_the_accepted_firing_event_makes_the_delivery_firing_and_the_alert_ready() -> None:
    step = firing()
    key = step.delivery["deduplicationKey"]
    assert step.delivery["state"] == "Firing" and step.delivery["openedAt"]
    assert ready(step) == ("True", "Delivered")
    assert step.condition()["message"] == f"alert {key} firing in {DESTINATION}"
    assert step.settlement is not None and step.settlement.holds_incidents
    (event,) = step.settlement.events
    assert event.action == "Firing" and event.reference == key


def test_a_firing_alert_sends_nothing_more_and_a_retry_or_restart_reuses_the_key() -> None:
    step = firing()
    assert reconcile(step.body, accepting, **WORLD).plan.actions == ()
    # The process died mid-call: the next reconciliation re-sends under the key already on record.
    unanswered = reconcile(alert_body(), None, **WORLD)
    again = reconcile(unanswered.body, None, now=later(10), **WORLD)
    assert sent(again).deduplication_key == sent(unanswered).deduplication_key
    assert again.delivery["attempts"] == 2


def test_resolve_sends_the_same_key_resolved_without_any_closed_status() -> None:
    fired = firing()
    key = fired.delivery["deduplicationKey"]
    world = {"destinations": [alert_event_destination(closedStatusId=None)]}
    in_flight = reconcile(with_spec(fired.body, state="resolved"), None, **world)
    assert in_flight.condition()["message"] == "resolving alerts in incident.io"
    step = reconcile(with_spec(fired.body, state="resolved"), accepting, **world)
    event = sent(step)
    assert event.status == "resolved" and event.deduplication_key == key
    assert closes(step.plan.actions[0])
    assert step.delivery["state"] == "Resolved" and step.delivery["closedAt"]
    assert ready(step) == ("True", "Resolved")
    assert step.condition()["message"] == f"alert {key} resolved in {DESTINATION}"
    assert step.settlement is not None and not step.settlement.holds_incidents


def test_an_alert_resolved_before_its_firing_event_was_confirmed_still_resolves_the_key() -> None:
    unanswered = reconcile(alert_body(), None, **WORLD)
    step = reconcile(with_spec(unanswered.body, state="dismissed"), accepting, now=later(10), **WORLD)
    assert sent(step).status == "resolved"
    assert sent(step).deduplication_key == unanswered.delivery["deduplicationKey"]
    assert step.delivery["state"] == "Resolved"


def test_a_retrigger_fires_under_a_new_key() -> None:
    fired = firing()
    done = reconcile(with_spec(fired.body, state="resolved"), accepting, **WORLD)
    again = reconcile(with_spec(done.body, state="triggered"), accepting, **WORLD)
    assert again.status["epoch"] == 2
    assert again.delivery["deduplicationKey"] == deduplication_key(ALERT_UID, DESTINATION_REF, 2)
    assert again.delivery["deduplicationKey"] != fired.delivery["deduplicationKey"]


def test_a_refused_token_is_retried_with_a_message_naming_the_tokens_secret() -> None:
    error = incidentio_error(401, "Unauthorized", operation="create_alert_event")
    step = firing(respond=failing(error))
    assert step.delivery["state"] == "Pending" and step.delivery["nextAttemptAt"]
    assert "spec.alertSource.tokenSecretRef" in step.delivery["lastError"]
    assert ready(step) == ("False", "Retrying")


def test_a_rate_limited_event_waits_for_retry_after() -> None:
    error = incidentio_error(429, "Too many requests", operation="create_alert_event", retry_after=42.0)
    step = firing(respond=failing(error))
    assert step.settlement is not None and step.settlement.requeue_after == 42.0
    assert step.delivery["state"] == "Pending"


def test_a_delivery_never_sent_follows_its_destinations_mode_and_one_sent_keeps_its_own() -> None:
    waiting = reconcile(alert_body(), None, destinations=[destination_body(ready=False)])
    assert waiting.plan.actions == () and "idempotencyKey" in waiting.delivery
    switched = reconcile(waiting.body, None, **WORLD)
    assert sent(switched).status == "firing" and "idempotencyKey" not in switched.delivery
    fired = firing()
    back = reconcile(with_spec(fired.body, state="resolved"), accepting, destinations=[destination_body()])
    assert sent(back).status == "resolved", "what went out as an alert event resolves as one"
    key = idempotency_key(ALERT_UID, DESTINATION_REF, 1)
    assert key != fired.delivery["deduplicationKey"]


def test_deduplication_keys_are_deterministic_per_alert_destination_and_epoch() -> None:
    other = ObjectRef(NAMESPACE, "other")
    key = deduplication_key(ALERT_UID, DESTINATION_REF, 1)
    assert key == deduplication_key(ALERT_UID, DESTINATION_REF, 1)
    assert len({key, deduplication_key(ALERT_UID, other, 1), deduplication_key("uid-2", DESTINATION_REF, 1)}) == 3
    assert key != deduplication_key(ALERT_UID, DESTINATION_REF, 2)


def test_metadata_carries_names_and_the_link_becomes_the_source_url() -> None:
    event = sent(reconcile(alert_body(link="https://app.anomalyarmor.ai/alerts/abc"), None, **WORLD))
    assert event.source_url == "https://app.anomalyarmor.ai/alerts/abc"
    metadata = dict(event.metadata or {})
    assert metadata["event_type"] == "schema_change" and metadata["severity"] == "critical"
    assert metadata["rules"] == ["production-breaking-changes"]
    assert metadata["asset"]["qualified_name"] == "snowflake.prod_db.sales.orders"
    assert metadata["data_alert"] == {
        "namespace": NAMESPACE,
        "name": "orders-column-removed-7f3a",
        "labels": {"team": "payments"},
    }
    assert metadata["changes"] == ["column_removed customer_id"]
    assert sent(firing()).source_url is None


def test_alert_metadata_leaves_out_empty_asset_fields() -> None:
    body = alert_body(asset={"qualifiedName": "snowflake.prod_db.sales.orders"}, changes=[])
    alert = DataAlert.from_body(body)
    assert alert.spec is not None
    metadata = alert_metadata(alert.spec, alert.ref, {}, ["r"])
    assert metadata["asset"] == {"qualified_name": "snowflake.prod_db.sales.orders"}
    assert "changes" not in metadata


def test_the_connection_test_pair_fires_and_resolves_one_key() -> None:
    fired, resolved = connection_test_events("[AnomalyArmor]", "armor-test-1")
    assert (fired.status, resolved.status) == ("firing", "resolved")
    assert fired.deduplication_key == resolved.deduplication_key == "armor-test-1"
    assert fired.title == "[AnomalyArmor] Connection test"


def test_noise_control_defers_an_alert_event_and_sends_it_once_due() -> None:
    rules = [rule_body(schedule=WEEKDAYS)]
    models = [AlertRule.from_body(body) for body in rules]
    destination = Destination.from_body(alert_event_destination())

    def at(body: dict[str, Any], now: datetime.datetime) -> tuple[Any, AlertContext]:
        alert = DataAlert.from_body(body)
        assert alert.spec is not None
        routing = route(alert.spec, alert.ref, alert.labels, models)
        facts = NoiseFacts({r.ref.name: r for r in models}, [], AdmissionLedger())
        context = AlertContext(alert, routing, {destination.ref: destination}, now, noise=facts)
        return plan(context), context

    deferred, _ = at(alert_body(), SATURDAY_NOON)
    assert deferred.actions == ()
    (held,) = deferred.deliveries
    assert held.state.value == "Deferred" and held.mode == "AlertEvent" and held.attempts == 0
    due, context = at(with_status(alert_body(), deferred.status), MONDAY_8)
    (action,) = due.actions
    assert isinstance(action, SendAlertEvent) and action.event.status == "firing"
    settled = settle(
        replace(context, alert=DataAlert.from_body(with_status(alert_body(), due.status))), due, [accepting(action)]
    )
    assert [d["state"] for d in settled.status["deliveries"]] == ["Firing"]


def test_the_alert_source_judgement_names_what_to_fix() -> None:
    wanted = AlertSourceRef(SOURCE_ID, SecretKeyRef("alert-source", "token"))
    heartbeat_source = AlertSource("01HB", "Pipeline", "heartbeat", None)
    wrong = judge.check_alert_source(heartbeat_source, wanted)
    assert wrong is not None and wrong.reason == "AlertSourceNotHTTP" and "'heartbeat', not 'http'" in wrong.message
    assert judge.check_alert_source(AlertSource(SOURCE_ID, "AnomalyArmor", "http", None), wanted) is None
    missing = judge.alert_source_failure(incidentio_error(404, "Not found", operation="show_alert_source"), wanted)
    assert missing.reason == "AlertSourceNotFound" and "spec.alertSource.configId" in missing.message
    key_refused = judge.alert_source_failure(incidentio_error(401, "no", operation="show_alert_source"), wanted)
    assert key_refused.reason == "Unauthorized" and "spec.apiKeySecretRef" in key_refused.message
    token_refused = judge.event_failure(incidentio_error(401, "no", operation="create_alert_event"), wanted)
    assert token_refused.reason == judge.TOKEN_REFUSED
    assert "HTTP 401" in token_refused.message and "Secret alert-source (key token)" in token_refused.message
    assert (
        judge.verified(wanted, None).message
        == "Verified: alert source token present in Secret alert-source (key token)"
    )


def test_an_alert_whose_alert_event_resolved_is_settled_and_one_still_firing_is_not() -> None:
    fired = firing()
    done = reconcile(with_spec(fired.body, state="resolved"), accepting, **WORLD)
    for step, expected in ((fired, False), (done, True)):
        alert = DataAlert.from_body(step.body)
        deliveries = [Delivery.from_json(d) for d in step.deliveries]
        assert settled(alert, step.status["epoch"], deliveries) is expected
