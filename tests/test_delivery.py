"""The delivery lifecycle: which incidents to open or close, the status written around the calls, and failures."""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from incidentio_operator.api import AlertRule, DataAlert, Destination, ObjectRef
from incidentio_operator.decisions.delivery import (
    Action,
    AlertContext,
    CloseIncident,
    OpenIncident,
    Outcome,
    Plan,
    Settlement,
    plan,
    settle,
)
from incidentio_operator.decisions.delivery.updates import fingerprint
from incidentio_operator.decisions.payloads import idempotency_key
from incidentio_operator.decisions.routing import route
from incidentio_operator.incidentio import IncidentIoError, Unreachable

from .factories import (
    CLOSED_STATUS_ID,
    DESTINATION,
    NAMESPACE,
    NOW,
    alert_body,
    destination_body,
    incident,
    incidentio_error,
    rule_body,
    with_spec,
    with_status,
)

ALERT_UID = "3f0c7a52-alert-uid"
DESTINATION_REF = ObjectRef(NAMESPACE, DESTINATION)
RULE = "production-breaking-changes"
RETRY_BASE = 5.0

Body = dict[str, Any]
Responder = Callable[[Action], Outcome]


# --- a small stand-in for the controller: plan, "call" incident.io, settle ---------------------------------


def context(
    alert: Mapping[str, Any],
    *,
    destinations: Sequence[Mapping[str, Any]] | None = None,
    rules: Sequence[Mapping[str, Any]] | None = None,
    now: datetime.datetime = NOW,
    allow_cross_namespace: bool = False,
) -> AlertContext:
    parsed = DataAlert.from_body(alert)
    if destinations is None:
        destinations = [destination_body()]
    found = [Destination.from_body(body) for body in destinations]
    rule_models = [AlertRule.from_body(body) for body in (rules if rules is not None else [rule_body()])]
    routing = (
        route(parsed.spec, parsed.ref, parsed.labels, rule_models, allow_cross_namespace=allow_cross_namespace)
        if parsed.spec is not None
        else None
    )
    return AlertContext(parsed, routing, {d.ref: d for d in found}, now, retry_base=RETRY_BASE)


def incidentio(
    reference: str = "INC-123", incident_id: str = "01FDAG4SAP5TYPT98WGR2N7W91", *, can_close: bool = True
) -> Responder:
    """incident.io accepting every call: creates answer with the incident, closes succeed.

    Like the controller, a create marked ``then_close`` is closed right after, when the destination has a
    closed status (``can_close``).
    """

    def respond(action: Action) -> Outcome:
        if isinstance(action, OpenIncident):
            created = incident(reference, incident_id)
            return Outcome(action.label, action.epoch, incident=created, closed=action.then_close and can_close)
        return Outcome(action.label, action.epoch, closed=True)

    return respond


def failing(error: IncidentIoError) -> Responder:
    def respond(action: Action) -> Outcome:
        return Outcome(action.label, action.epoch, error=error)

    return respond


@dataclass(frozen=True)
class Step:
    """One reconciliation: the plan, the body after the status written before the calls, and after settling."""

    plan: Plan
    before_calls: Body
    settlement: Settlement | None
    body: Body

    @property
    def status(self) -> Mapping[str, Any]:
        status: Mapping[str, Any] = self.body["status"]
        return status

    @property
    def deliveries(self) -> list[dict[str, Any]]:
        return list(self.status["deliveries"])

    @property
    def delivery(self) -> dict[str, Any]:
        """The one delivery of the current epoch."""
        (only,) = [d for d in self.deliveries if d["epoch"] == self.status["epoch"]]
        return only

    def condition(self, kind: str = "Ready") -> dict[str, Any]:
        (found,) = [dict(c) for c in self.status["conditions"] if c["type"] == kind]
        return found


def reconcile(
    alert: Mapping[str, Any],
    respond: Responder | None = None,
    **world: Any,
) -> Step:
    """Plan, write the plan's status, answer every action with ``respond``, settle and write that status.

    Without ``respond`` the calls never return (the process died mid-call): only the plan's status is written.
    """
    planned_context = context(alert, **world)
    planned = plan(planned_context)
    before_calls = with_status(alert, planned.status)
    if not planned.actions or respond is None:
        return Step(planned, before_calls, None, before_calls)
    outcomes = [respond(action) for action in planned.actions]
    settled = settle(replace(planned_context, alert=DataAlert.from_body(before_calls)), planned, outcomes)
    return Step(planned, before_calls, settled, with_status(alert, settled.status))


def opened(**alert: Any) -> Body:
    """An alert whose incident INC-123 is open in the destination."""
    step = reconcile(alert_body(**alert), incidentio())
    assert step.delivery["state"] == "Open"
    return step.body


def resolved(state: str = "resolved", **alert: Any) -> Body:
    """An alert with its incident open, then resolved by the detector."""
    return with_spec(opened(**alert), state=state)


def later(seconds: float) -> datetime.datetime:
    return NOW + datetime.timedelta(seconds=seconds)


def ready(step: Step) -> tuple[str, str]:
    condition = step.condition("Ready")
    return condition["status"], condition["reason"]


# --- triggered: open one incident per destination ----------------------------------------------------------


def test_new_alert_plans_one_incident_and_records_the_attempt_before_the_call() -> None:
    step = reconcile(alert_body())

    (action,) = step.plan.actions
    assert isinstance(action, OpenIncident)
    assert action.destination == DESTINATION_REF
    assert action.epoch == 1
    assert not action.then_close
    key = idempotency_key(ALERT_UID, DESTINATION_REF, 1)
    assert action.request.idempotency_key == key
    assert action.request.name == "[AnomalyArmor] Column customer_id removed from orders"
    assert step.plan.needs_finalizer, "an incident is about to be created"
    status = step.status
    assert status["epoch"] == 1
    assert status["observedState"] == "triggered"
    assert status["observedGeneration"] == 1
    assert status["matchedRules"] == [RULE]
    assert step.deliveries == [
        {
            "destination": DESTINATION,
            "rules": [RULE],
            "epoch": 1,
            "idempotencyKey": key,
            "state": "Pending",
            "attempts": 1,
            "alertGeneration": 1,
            "destinationGeneration": 1,
            # What the create sends, as digests: an open incident is kept current from these.
            "sent": {"generation": 1, "fields": fingerprint(action.request)},
        }
    ]
    assert ready(step) == ("False", "Delivering")
    assert step.condition("Reconciling")["status"] == "True"


def test_created_incident_is_recorded_as_open_and_the_alert_is_ready() -> None:
    step = reconcile(alert_body(), incidentio("INC-123", "01INCIDENT"))

    delivery = step.delivery
    assert delivery["state"] == "Open"
    assert delivery["incidentId"] == "01INCIDENT"
    assert delivery["reference"] == "INC-123"
    assert delivery["permalink"] == "https://app.incident.io/incidents/INC-123"
    assert delivery["openedAt"] == "2026-11-26T10:00:00Z"
    assert delivery["attempts"] == 1
    assert "lastError" not in delivery
    assert step.status["incidents"] == "INC-123"
    assert ready(step) == ("True", "Delivered")
    assert "INC-123" in step.condition()["message"]
    assert step.settlement is not None
    assert step.settlement.holds_incidents
    assert step.settlement.requeue_after is None
    assert [(e.action, e.destination, e.reference) for e in step.settlement.events] == [
        ("Created", DESTINATION_REF, "INC-123")
    ]


@pytest.mark.parametrize("state", ["triggered", "acknowledged", "snoozed"])
def test_open_incident_is_not_created_again(state: str) -> None:
    alert = with_spec(opened(), state=state) if state != "triggered" else opened()

    step = reconcile(alert, incidentio("INC-999"))

    assert step.plan.actions == ()
    assert step.plan.needs_finalizer
    assert step.status["epoch"] == 1
    assert step.delivery["reference"] == "INC-123"
    assert ready(step) == ("True", "Delivered")


@pytest.mark.parametrize("state", ["acknowledged", "snoozed"])
def test_alert_first_seen_acknowledged_or_snoozed_still_gets_its_incident(state: str) -> None:
    step = reconcile(alert_body(state=state), incidentio())

    assert [type(action) for action in step.plan.actions] == [OpenIncident]
    assert step.delivery["state"] == "Open"
    assert step.status["epoch"] == 1


def test_several_rules_to_one_destination_give_one_incident_naming_every_rule() -> None:
    rules = [rule_body("schema-changes"), rule_body("critical-alerts", severities=["critical"])]

    step = reconcile(alert_body(), incidentio(), rules=rules)

    (action,) = step.plan.actions
    assert isinstance(action, OpenIncident)
    assert action.request.summary is not None
    assert "critical-alerts" in action.request.summary
    assert "schema-changes" in action.request.summary
    assert step.delivery["rules"] == ["critical-alerts", "schema-changes"]
    assert step.status["matchedRules"] == ["critical-alerts", "schema-changes"]


def test_each_destination_gets_its_own_incident_and_key() -> None:
    destinations = [destination_body(), destination_body("pager")]
    rules = [rule_body(destinations=[DESTINATION, "pager"])]

    step = reconcile(alert_body(), destinations=destinations, rules=rules)

    assert sorted(a.destination.name for a in step.plan.actions) == sorted([DESTINATION, "pager"])
    keys = {a.request.idempotency_key for a in step.plan.actions if isinstance(a, OpenIncident)}
    assert keys == {
        idempotency_key(ALERT_UID, DESTINATION_REF, 1),
        idempotency_key(ALERT_UID, ObjectRef(NAMESPACE, "pager"), 1),
    }
    assert sorted(d["destination"] for d in step.deliveries) == sorted([DESTINATION, "pager"])


def test_one_destination_failing_does_not_hold_back_the_other() -> None:
    destinations = [destination_body(), destination_body("pager")]
    rules = [rule_body(destinations=[DESTINATION, "pager"])]

    def pager_down(action: Action) -> Outcome:
        if action.label == "pager":
            return failing(incidentio_error(503))(action)
        return incidentio()(action)

    step = reconcile(alert_body(), pager_down, destinations=destinations, rules=rules)

    states = {d["destination"]: d["state"] for d in step.deliveries}
    assert states == {DESTINATION: "Open", "pager": "Pending"}
    assert ready(step) == ("False", "Retrying")
    assert "pager" in step.condition()["message"]
    assert step.status["incidents"] == "INC-123"


def test_incident_gets_the_severity_the_destinations_connection_test_resolved() -> None:
    destinations = [destination_body(severity_ids={"default": "01MINOR", "map": {"critical": "01CRITICAL"}})]

    (action,) = reconcile(alert_body(), destinations=destinations).plan.actions

    assert isinstance(action, OpenIncident)
    assert action.request.severity_id == "01CRITICAL"


def test_create_that_never_returned_is_sent_again_with_the_same_key() -> None:
    died = reconcile(alert_body()).body  # the process died while the create was in flight

    step = reconcile(died)

    (action,) = step.plan.actions
    assert isinstance(action, OpenIncident)
    assert action.request.idempotency_key == idempotency_key(ALERT_UID, DESTINATION_REF, 1)
    assert step.delivery["attempts"] == 2
    assert step.status["epoch"] == 1


def _destination_with_stale_test() -> Body:
    body = destination_body(generation=2)
    body["status"]["observedGeneration"] = 1
    return body


def _destination_with_invalid_spec() -> Body:
    return destination_body(spec={"apiKeySecretRef": {"name": "k"}, "incident": {"visibility": "secret"}})


@pytest.mark.parametrize(
    ("destinations", "why"),
    [
        ([destination_body(ready=False)], "is not Ready"),
        ([], "not found"),
        ([destination_body(suspend=True)], "is suspended"),
        ([_destination_with_stale_test()], "is not Ready"),
        ([_destination_with_invalid_spec()], "is invalid"),
    ],
    ids=["not-ready", "missing", "suspended", "test-not-run-for-this-generation", "invalid-spec"],
)
def test_delivery_waits_for_a_destination_that_cannot_take_it(destinations: list[Body], why: str) -> None:
    step = reconcile(alert_body(), incidentio(), destinations=destinations)

    assert step.plan.actions == ()
    delivery = step.delivery
    assert delivery["state"] == "Pending"
    assert delivery["attempts"] == 0
    assert f"IncidentIoDestination {DESTINATION}" in delivery["waitingFor"]
    assert why in delivery["waitingFor"]
    assert delivery["idempotencyKey"] == idempotency_key(ALERT_UID, DESTINATION_REF, 1)
    assert ready(step) == ("False", "WaitingForDestination")
    assert DESTINATION in step.condition()["message"]
    assert step.condition("Reconciling")["status"] == "True"
    assert not step.plan.needs_finalizer, "nothing exists in incident.io yet"


def test_waiting_delivery_goes_out_once_the_destination_is_ready() -> None:
    waiting = reconcile(alert_body(), destinations=[destination_body(ready=False)]).body

    step = reconcile(waiting, incidentio())

    assert len(step.plan.actions) == 1
    assert step.delivery["state"] == "Open"
    assert step.delivery["attempts"] == 1
    assert "waitingFor" not in step.delivery


@pytest.mark.parametrize(
    "rules",
    [[], [rule_body(eventTypes=["freshness_violation"])], [rule_body(suspend=True)], [rule_body(namespace="other")]],
    ids=["no-rules", "rule-does-not-match", "rule-suspended", "rule-in-another-namespace"],
)
def test_alert_no_rule_matches_is_ready_with_reason_no_matching_rule(rules: list[Body]) -> None:
    step = reconcile(alert_body(), incidentio(), rules=rules)

    assert step.plan.actions == ()
    assert not step.plan.needs_finalizer
    assert step.deliveries == []
    assert step.status["matchedRules"] == []
    assert ready(step) == ("True", "NoMatchingRule")


def test_cross_namespace_destination_is_not_delivered_to_and_the_alert_says_why() -> None:
    rules = [rule_body(destinations=[{"name": "shared", "namespace": "platform"}])]
    destinations = [destination_body("shared", namespace="platform")]

    step = reconcile(alert_body(), incidentio(), rules=rules, destinations=destinations)

    assert step.plan.actions == ()
    assert step.deliveries == []
    assert "cross-namespace" in step.condition()["message"]


def test_cross_namespace_destination_is_delivered_to_when_allowed() -> None:
    rules = [rule_body(destinations=[{"name": "shared", "namespace": "platform"}])]
    destinations = [destination_body("shared", namespace="platform")]

    step = reconcile(alert_body(), incidentio(), rules=rules, destinations=destinations, allow_cross_namespace=True)

    (action,) = step.plan.actions
    assert action.destination == ObjectRef("platform", "shared")
    assert step.delivery["destination"] == "platform/shared"
    assert step.delivery["state"] == "Open"


def test_invalid_alert_spec_is_not_ready_and_acts_on_nothing() -> None:
    step = reconcile(alert_body(severity="high"), incidentio())

    assert step.plan.actions == ()
    assert ready(step) == ("False", "InvalidSpec")
    assert "spec.severity" in step.condition()["message"]
    assert step.condition("Stalled")["status"] == "True"


def test_alert_whose_spec_turns_invalid_keeps_its_finalizer_while_an_incident_is_open() -> None:
    broken = with_spec(opened(), severity="high")

    step = reconcile(broken, incidentio())

    assert step.delivery["state"] == "Open"
    assert step.plan.needs_finalizer


# --- failures while creating -------------------------------------------------------------------------------

RETRYABLE = [
    pytest.param(incidentio_error(500, "internal error", request_id="req_500"), id="500"),
    pytest.param(incidentio_error(503, "service unavailable", request_id="req_503"), id="503"),
    pytest.param(incidentio_error(429, "rate limited", request_id="req_429"), id="429"),
    pytest.param(Unreachable("incident.io unreachable: connection refused", operation="create_incident"), id="down"),
]


@pytest.mark.parametrize("error", RETRYABLE)
def test_retryable_create_failure_stays_pending_and_retries_later(error: IncidentIoError) -> None:
    step = reconcile(alert_body(), failing(error))

    delivery = step.delivery
    assert delivery["state"] == "Pending"
    assert delivery["attempts"] == 1
    assert str(error) in delivery["lastError"]
    if error.request_id:
        assert error.request_id in delivery["lastError"], "the user quotes it to incident.io support"
    assert delivery["nextAttemptAt"] == "2026-11-26T10:00:05Z"
    assert step.settlement is not None
    assert step.settlement.requeue_after == RETRY_BASE
    assert step.settlement.events == ()
    assert step.settlement.holds_incidents, "the create may have gone through"
    assert ready(step) == ("False", "Retrying")
    assert step.condition("Reconciling")["status"] == "True"


def test_retry_waits_for_next_attempt_at_then_resends_the_same_key() -> None:
    failed = reconcile(alert_body(), failing(incidentio_error(503))).body

    too_early = reconcile(failed, incidentio(), now=later(2))
    due = reconcile(failed, incidentio(), now=later(5))

    assert too_early.plan.actions == ()
    assert too_early.plan.requeue_after == pytest.approx(3.0)
    assert too_early.delivery["state"] == "Pending"
    (action,) = due.plan.actions
    assert isinstance(action, OpenIncident)
    assert action.request.idempotency_key == idempotency_key(ALERT_UID, DESTINATION_REF, 1)
    assert due.before_calls["status"]["deliveries"][0]["attempts"] == 2
    assert due.delivery["state"] == "Open"
    assert "lastError" not in due.delivery
    assert "nextAttemptAt" not in due.delivery


def test_retries_back_off_exponentially() -> None:
    first = reconcile(alert_body(), failing(incidentio_error(503))).body

    second = reconcile(first, failing(incidentio_error(503)), now=later(5))

    assert second.delivery["attempts"] == 2
    assert second.delivery["nextAttemptAt"] == "2026-11-26T10:00:15Z"
    assert second.settlement is not None
    assert second.settlement.requeue_after == 2 * RETRY_BASE


def test_rate_limited_create_is_not_retried_before_incident_io_said() -> None:
    step = reconcile(alert_body(), failing(incidentio_error(429, "slow down", retry_after=60.0)))

    assert step.delivery["nextAttemptAt"] == "2026-11-26T10:01:00Z"
    assert step.settlement is not None
    assert step.settlement.requeue_after == 60.0


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_api_key_retries_and_asks_for_the_destination_to_be_tested_again(status: int) -> None:
    step = reconcile(alert_body(), failing(incidentio_error(status)))

    delivery = step.delivery
    assert delivery["state"] == "Pending"
    assert f"HTTP {status}" in delivery["lastError"]
    assert delivery["nextAttemptAt"] == "2026-11-26T10:00:05Z"
    assert step.settlement is not None
    assert step.settlement.requeue_after == RETRY_BASE
    assert ready(step)[0] == "False"


@pytest.mark.parametrize("status", [401, 403])
def test_rejected_api_key_error_carries_incident_ios_message_and_request_id(status: int) -> None:
    error = incidentio_error(status, "API key lacks the incident_creator role", request_id="req_auth_1")

    step = reconcile(alert_body(), failing(error))

    assert "req_auth_1" in step.delivery["lastError"]
    assert "incident_creator" in step.delivery["lastError"]


PERMANENT = [
    pytest.param(incidentio_error(422, "severity_id is unknown", field="severity_id", request_id="r1"), id="422"),
    pytest.param(incidentio_error(400, "name is too long", field="name", request_id="r2"), id="400"),
    pytest.param(incidentio_error(404, "not found", request_id="r3"), id="404"),
]


@pytest.mark.parametrize("error", PERMANENT)
def test_refused_create_fails_with_incident_ios_message_and_a_hint(error: IncidentIoError) -> None:
    step = reconcile(alert_body(), failing(error))

    delivery = step.delivery
    assert delivery["state"] == "Failed"
    assert delivery["lastError"].startswith(str(error))
    assert len(delivery["lastError"]) > len(str(error)), "a hint on what to do follows incident.io's message"
    assert error.request_id is not None and error.request_id in delivery["lastError"]
    assert "nextAttemptAt" not in delivery
    assert ready(step) == ("False", "DeliveryFailed")
    assert step.condition("Stalled")["status"] == "True"
    assert step.settlement is not None
    assert [(e.action, e.destination) for e in step.settlement.events] == [("Failed", DESTINATION_REF)]
    assert step.settlement.requeue_after is None


def test_refused_create_is_not_retried_while_nothing_changed() -> None:
    failed = reconcile(alert_body(), failing(incidentio_error(422))).body

    step = reconcile(failed, incidentio(), now=later(3600))

    assert step.plan.actions == ()
    assert step.plan.requeue_after is None
    assert step.delivery["state"] == "Failed"
    assert ready(step) == ("False", "DeliveryFailed")


def test_refused_create_is_retried_when_the_alert_changes() -> None:
    failed = reconcile(alert_body(), failing(incidentio_error(422))).body

    step = reconcile(with_spec(failed, title="Column customer_id removed"), incidentio())

    (action,) = step.plan.actions
    assert isinstance(action, OpenIncident)
    assert action.request.idempotency_key == idempotency_key(ALERT_UID, DESTINATION_REF, 1)
    assert step.delivery["state"] == "Open"
    assert ready(step) == ("True", "Delivered")


def test_refused_create_is_retried_when_the_destination_changes() -> None:
    failed = reconcile(alert_body(), failing(incidentio_error(422))).body

    step = reconcile(failed, incidentio(), destinations=[destination_body(generation=2)])

    assert len(step.plan.actions) == 1
    assert step.delivery["state"] == "Open"


# --- resolved or dismissed: close what is open -------------------------------------------------------------


@pytest.mark.parametrize("state", ["resolved", "dismissed"])
@pytest.mark.parametrize("notify", [True, False])
def test_resolved_alert_closes_its_incident_with_the_destinations_closed_status(state: str, notify: bool) -> None:
    destinations = [destination_body(notify_incident_channel=notify)]

    step = reconcile(resolved(state), incidentio(), destinations=destinations)

    (action,) = step.plan.actions
    assert isinstance(action, CloseIncident)
    assert action.destination == DESTINATION_REF
    assert action.incident_id == "01FDAG4SAP5TYPT98WGR2N7W91"
    assert action.request.incident_status_id == CLOSED_STATUS_ID
    assert action.request.notify_incident_channel is notify
    assert step.plan.needs_finalizer
    assert step.before_calls["status"]["deliveries"][0]["state"] == "Closing"
    assert step.status["observedState"] == state


def test_alert_is_reconciling_while_its_close_is_in_flight() -> None:
    step = reconcile(resolved())  # the close went out; its answer has not come back

    assert step.delivery["state"] == "Closing"
    assert ready(step) == ("False", "Closing")
    assert step.condition("Reconciling")["status"] == "True"


def test_alert_first_seen_resolved_opens_nothing() -> None:
    step = reconcile(alert_body(state="resolved"), incidentio())

    assert step.plan.actions == ()
    assert step.deliveries == []
    assert not step.plan.needs_finalizer
    assert ready(step) == ("True", "Resolved")


def test_closed_incident_is_recorded_and_the_alert_is_ready() -> None:
    step = reconcile(resolved(), incidentio())

    delivery = step.delivery
    assert delivery["state"] == "Closed"
    assert delivery["closedAt"] == "2026-11-26T10:00:00Z"
    assert delivery["reference"] == "INC-123"
    assert ready(step) == ("True", "Closed")
    assert "INC-123" in step.condition()["message"]
    assert step.settlement is not None
    assert not step.settlement.holds_incidents, "the finalizer may go"
    assert [(e.action, e.reference) for e in step.settlement.events] == [("Closed", "INC-123")]


def test_closed_incident_is_not_closed_again() -> None:
    closed = reconcile(resolved(), incidentio()).body

    step = reconcile(closed, incidentio())

    assert step.plan.actions == ()
    assert not step.plan.needs_finalizer
    assert ready(step) == ("True", "Closed")


def test_close_counts_its_own_attempts() -> None:
    step = reconcile(resolved(), incidentio())

    assert step.before_calls["status"]["deliveries"][0]["attempts"] == 1


def test_destination_without_closed_status_leaves_the_incident_open_and_says_so() -> None:
    destinations = [destination_body(closed_status_id=None)]
    alert = resolved()

    step = reconcile(alert, incidentio(), destinations=destinations)

    assert step.plan.actions == ()
    assert step.delivery["state"] == "LeftOpen"
    assert not step.plan.needs_finalizer
    assert ready(step) == ("True", "LeftOpen")
    assert "INC-123" in step.condition()["message"]
    assert "closedStatusId" in step.condition()["message"]
    assert [(e.action, e.reference) for e in step.plan.events] == [("LeftOpen", "INC-123")]


def test_never_sent_delivery_is_dropped_on_resolve() -> None:
    waiting = reconcile(alert_body(), destinations=[destination_body(ready=False)]).body

    step = reconcile(with_spec(waiting, state="resolved"), incidentio(), destinations=[destination_body()])

    assert step.plan.actions == ()
    assert step.deliveries == []
    assert not step.plan.needs_finalizer
    assert ready(step) == ("True", "Resolved")


def test_refused_create_is_dropped_on_resolve() -> None:
    failed = reconcile(alert_body(), failing(incidentio_error(422))).body

    step = reconcile(with_spec(failed, state="resolved"), incidentio())

    assert step.plan.actions == ()
    assert step.deliveries == []
    assert ready(step)[0] == "True"


def test_unconfirmed_create_is_resent_with_its_key_and_closed_on_resolve() -> None:
    died = reconcile(alert_body()).body  # the create went out; its answer never came back

    step = reconcile(with_spec(died, state="resolved"), incidentio("INC-77"))

    (action,) = step.plan.actions
    assert isinstance(action, OpenIncident)
    assert action.then_close
    assert action.request.idempotency_key == idempotency_key(ALERT_UID, DESTINATION_REF, 1)
    assert step.plan.needs_finalizer
    assert step.delivery["state"] == "Closed"
    assert step.delivery["reference"] == "INC-77"
    assert step.settlement is not None
    assert not step.settlement.holds_incidents
    assert [e.action for e in step.settlement.events] == ["Created", "Closed"]


def test_unconfirmed_create_for_a_destination_without_closed_status_ends_left_open() -> None:
    died = reconcile(alert_body(), destinations=[destination_body(closed_status_id=None)]).body

    step = reconcile(
        with_spec(died, state="resolved"),
        incidentio("INC-77", can_close=False),
        destinations=[destination_body(closed_status_id=None)],
    )

    (action,) = step.plan.actions
    assert isinstance(action, OpenIncident)
    assert step.delivery["state"] == "LeftOpen"
    assert step.delivery["reference"] == "INC-77"
    assert ready(step) == ("True", "LeftOpen")


def test_unconfirmed_create_left_open_tells_the_user_with_an_event() -> None:
    no_close = [destination_body(closed_status_id=None)]
    died = reconcile(alert_body(), destinations=no_close).body

    step = reconcile(with_spec(died, state="resolved"), incidentio("INC-77", can_close=False), destinations=no_close)

    assert step.settlement is not None
    assert [e.action for e in step.settlement.events] == ["Created", "LeftOpen"]


@pytest.mark.parametrize("error", RETRYABLE)
def test_retryable_close_failure_stays_closing_and_retries_later(error: IncidentIoError) -> None:
    step = reconcile(resolved(), failing(error))

    delivery = step.delivery
    assert delivery["state"] == "Closing"
    assert str(error) in delivery["lastError"]
    assert "nextAttemptAt" in delivery
    assert step.settlement is not None
    assert step.settlement.holds_incidents, "the finalizer stays until the incident is closed"
    assert step.settlement.requeue_after is not None
    assert ready(step) == ("False", "Retrying")


def test_close_is_retried_once_due() -> None:
    failed = reconcile(resolved(), failing(incidentio_error(503)))
    due_at = datetime.datetime.fromisoformat(failed.delivery["nextAttemptAt"].replace("Z", "+00:00"))

    too_early = reconcile(failed.body, incidentio(), now=due_at - datetime.timedelta(seconds=1))
    due = reconcile(failed.body, incidentio(), now=due_at)

    assert too_early.plan.actions == ()
    assert too_early.plan.requeue_after == pytest.approx(1.0)
    assert [type(a) for a in due.plan.actions] == [CloseIncident]
    assert due.delivery["state"] == "Closed"


@pytest.mark.parametrize("status", [401, 403])
def test_close_with_a_rejected_api_key_keeps_the_incident_to_close_and_retries(status: int) -> None:
    step = reconcile(resolved(), failing(incidentio_error(status, operation="edit_incident")))

    assert step.delivery["state"] == "Closing"
    assert f"HTTP {status}" in step.delivery["lastError"]
    assert step.delivery["nextAttemptAt"]
    assert step.settlement is not None
    assert step.settlement.requeue_after == RETRY_BASE


def test_refused_close_fails_with_incident_ios_message_and_what_to_do() -> None:
    error = incidentio_error(
        422, "Cannot move to a closed status without completing the post-incident flow", operation="edit_incident"
    )

    step = reconcile(resolved(), failing(error))

    delivery = step.delivery
    assert delivery["state"] == "Failed"
    assert delivery["incidentId"] == "01FDAG4SAP5TYPT98WGR2N7W91", "the incident is still there"
    assert "post-incident flow" in delivery["lastError"]
    assert "req_7f3a" in delivery["lastError"]
    assert "close the incident in incident.io" in delivery["lastError"]
    assert ready(step) == ("False", "DeliveryFailed")


def test_refused_close_is_retried_only_after_the_destination_changes() -> None:
    failed = reconcile(resolved(), failing(incidentio_error(422, operation="edit_incident"))).body

    unchanged = reconcile(failed, incidentio(), now=later(3600))
    changed = reconcile(failed, incidentio(), destinations=[destination_body(generation=2)])

    assert unchanged.plan.actions == ()
    assert [type(a) for a in changed.plan.actions] == [CloseIncident]
    assert changed.delivery["state"] == "Closed"


def test_close_waits_for_a_destination_that_is_not_ready() -> None:
    step = reconcile(resolved(), incidentio(), destinations=[destination_body(ready=False)])

    assert step.plan.actions == ()
    assert step.plan.needs_finalizer, "the incident is still open"
    assert DESTINATION in step.delivery["waitingFor"]
    assert ready(step) == ("False", "WaitingForDestination")


# --- triggered again after a resolve: a new epoch ----------------------------------------------------------


def test_alert_triggered_again_after_a_close_opens_a_new_incident_with_a_new_key() -> None:
    closed = reconcile(resolved(), incidentio()).body

    step = reconcile(with_spec(closed, state="triggered"), incidentio("INC-124", "01SECOND"))

    (action,) = step.plan.actions
    assert isinstance(action, OpenIncident)
    assert action.epoch == 2
    assert action.request.idempotency_key == idempotency_key(ALERT_UID, DESTINATION_REF, 2)
    assert action.request.idempotency_key != idempotency_key(ALERT_UID, DESTINATION_REF, 1)
    assert step.status["epoch"] == 2
    assert step.delivery["state"] == "Open"
    assert step.delivery["reference"] == "INC-124"
    assert step.status["incidents"] == "INC-124"
    assert sorted((d["epoch"], d["state"]) for d in step.deliveries) == [(1, "Closed"), (2, "Open")]
    assert ready(step) == ("True", "Delivered")


def test_alert_triggered_again_after_its_incident_was_left_open_opens_a_new_one() -> None:
    no_close = [destination_body(closed_status_id=None)]
    left_open = reconcile(resolved(), incidentio(), destinations=no_close).body

    step = reconcile(with_spec(left_open, state="triggered"), incidentio("INC-124"), destinations=no_close)

    assert step.status["epoch"] == 2
    assert step.delivery["reference"] == "INC-124"


def test_epoch_stays_while_the_alert_moves_between_active_states() -> None:
    body = opened()
    for state in ("acknowledged", "snoozed", "triggered"):
        step = reconcile(with_spec(body, state=state), incidentio("INC-999"))
        assert step.plan.actions == ()
        assert step.status["epoch"] == 1
        body = step.body


def test_history_is_bounded_to_the_latest_epochs() -> None:
    body = opened()
    for number in range(2, 7):
        body = reconcile(with_spec(body, state="resolved"), incidentio()).body
        body = reconcile(with_spec(body, state="triggered"), incidentio(f"INC-{number}", f"01ID{number}")).body

    assert sorted((d["epoch"], d["state"]) for d in body["status"]["deliveries"]) == [
        (4, "Closed"),
        (5, "Closed"),
        (6, "Open"),
    ]


def test_incident_whose_close_was_still_pending_is_closed_after_the_alert_triggers_again() -> None:
    close_failed = reconcile(resolved(), failing(incidentio_error(503))).body

    step = reconcile(with_spec(close_failed, state="triggered"), incidentio("INC-124", "01SECOND"), now=later(60))

    closes = [a for a in step.plan.actions if isinstance(a, CloseIncident)]
    assert [(a.epoch, a.incident_id) for a in closes] == [(1, "01FDAG4SAP5TYPT98WGR2N7W91")]


# --- deletion: close first, then let go ----------------------------------------------------------------------


def _deleting(body: Body) -> Body:
    metadata = {**body["metadata"], "deletionTimestamp": "2026-11-26T11:00:00Z"}
    return {**body, "metadata": metadata}


def test_deleting_an_alert_closes_its_open_incident_first() -> None:
    step = reconcile(_deleting(opened()), incidentio())

    (action,) = step.plan.actions
    assert isinstance(action, CloseIncident)
    assert step.plan.needs_finalizer
    assert step.delivery["state"] == "Closed"
    assert step.settlement is not None
    assert not step.settlement.holds_incidents


def test_deleting_an_alert_without_incidents_needs_no_finalizer() -> None:
    step = reconcile(alert_body(deleting=True), incidentio(), rules=[])

    assert step.plan.actions == ()
    assert not step.plan.needs_finalizer


def test_deleting_an_alert_whose_destination_is_gone_lets_go_and_says_the_incident_stays_open() -> None:
    step = reconcile(_deleting(opened()), incidentio(), destinations=[])

    assert step.plan.actions == ()
    assert not step.plan.needs_finalizer
    assert step.delivery["state"] == "LeftOpen"
    assert "not found" in step.delivery["lastError"]
    assert [e.action for e in step.plan.events] == ["LeftOpen"]


def test_deleting_an_alert_whose_destination_is_not_ready_keeps_the_finalizer() -> None:
    step = reconcile(_deleting(opened()), incidentio(), destinations=[destination_body(ready=False)])

    assert step.plan.actions == ()
    assert step.plan.needs_finalizer


# --- the status is what the CRD accepts ----------------------------------------------------------------------


def _status_schema() -> Mapping[str, Any]:
    crd = yaml.safe_load((Path(__file__).parent.parent / "crds" / "dataalerts.yaml").read_text())
    (version,) = [v for v in crd["spec"]["versions"] if v["name"] == "v1alpha1"]
    schema: Mapping[str, Any] = version["schema"]["openAPIV3Schema"]["properties"]["status"]
    return schema


@pytest.mark.parametrize(
    "scenario",
    ["pending", "open", "retrying", "failed", "closed", "left-open"],
)
def test_every_status_field_written_is_declared_in_the_crd(scenario: str) -> None:
    bodies: dict[str, Callable[[], Body]] = {
        "pending": lambda: reconcile(alert_body()).body,
        "open": opened,
        "retrying": lambda: reconcile(alert_body(), failing(incidentio_error(503))).body,
        "failed": lambda: reconcile(alert_body(), failing(incidentio_error(422))).body,
        "closed": lambda: reconcile(resolved(), incidentio()).body,
        "left-open": lambda: (
            reconcile(resolved(), incidentio(), destinations=[destination_body(closed_status_id=None)]).body
        ),
    }
    status = bodies[scenario]()["status"]
    schema = _status_schema()
    delivery_schema = schema["properties"]["deliveries"]["items"]

    assert set(status) <= set(schema["properties"]), "the API server would prune undeclared fields"
    for delivery in status["deliveries"]:
        assert set(delivery) <= set(delivery_schema["properties"])
        assert set(delivery_schema["required"]) <= set(delivery)
        assert delivery["state"] in delivery_schema["properties"]["state"]["enum"]
