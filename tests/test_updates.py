"""An open incident follows its alert: coalesced edits of only what changed, recorded in the delivery."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from incidentio_operator.decisions.delivery import (
    Action,
    CloseIncident,
    OpenIncident,
    Outcome,
    State,
    UpdateIncident,
    plan,
)
from incidentio_operator.decisions.delivery.record import SentRecord
from incidentio_operator.incidentio import IncidentIoError

from .factories import NOW, alert_body, destination_body, incident, incidentio_error, with_spec
from .test_delivery import Body, Responder, Step, context, reconcile

SEVERITY_IDS = {"map": {"critical": "01SEV1", "warning": "01SEV3"}}
QUIET = 3.0  # UpdateTiming's default: an edit goes once the alert has been quiet this long


def destination(**incident_spec: Any) -> dict[str, Any]:
    body = destination_body(severity_ids=SEVERITY_IDS)
    body["spec"]["incident"].update(incident_spec)
    return body


def at(seconds: float) -> datetime.datetime:
    return NOW + datetime.timedelta(seconds=seconds)


class IncidentIo:
    """incident.io accepting creates, closes and edits (or answering edits with ``edit_error``); edits kept."""

    def __init__(self, edit_error: IncidentIoError | None = None) -> None:
        self.edits: list[UpdateIncident] = []
        self.edit_error = edit_error

    def __call__(self, action: Action) -> Outcome:
        if isinstance(action, UpdateIncident):
            self.edits.append(action)
            return Outcome(action.label, action.epoch, update=action, error=self.edit_error)
        if isinstance(action, OpenIncident):
            return Outcome(action.label, action.epoch, incident=incident(), closed=action.then_close)
        return Outcome(action.label, action.epoch, closed=True)


def step(body: Mapping[str, Any], respond: Responder, seconds: float, **world: Any) -> Step:
    world.setdefault("destinations", [destination()])
    return reconcile(dict(body), respond, now=at(seconds), **world)


def opened(respond: Responder, **alert: Any) -> Body:
    done = step(alert_body(**alert), respond, 0)
    assert done.delivery["state"] == "Open"
    return done.body


def test_warning_to_critical_is_one_edit_of_severity_and_summary_once_the_alert_is_quiet() -> None:
    incidentio = IncidentIo()
    body = with_spec(opened(incidentio, severity="warning"), severity="critical")

    waiting = step(body, incidentio, 1)
    assert waiting.plan.actions == ()
    assert waiting.delivery["pendingUpdate"]["dueAt"] == "2026-11-26T10:00:04Z"
    assert waiting.plan.requeue_after == QUIET
    assert waiting.condition()["status"] == "True", "an edit waiting is no reason to say the alert is not Ready"

    sent = step(waiting.body, incidentio, 1 + QUIET)
    (edit,) = incidentio.edits
    assert edit.changed == ("summary", "severity")
    assert edit.request.to_json() == {
        "notify_incident_channel": True,
        "incident": {"summary": edit.request.summary, "severity_id": "01SEV1"},
    }
    assert "severity: critical" in str(edit.request.summary)
    delivery = sent.delivery
    assert delivery["state"] == "Open"
    assert delivery["updates"] == 1
    assert delivery["lastUpdatedAt"] == "2026-11-26T10:00:04Z"
    assert delivery["sent"] == {"generation": 2, "fields": dict(edit.fields)}
    assert "pendingUpdate" not in delivery or delivery["pendingUpdate"] is None
    assert sent.settlement is not None and [e.action for e in sent.settlement.events] == ["Updated"]

    again = step(sent.body, incidentio, 60)
    assert again.plan.actions == () and len(incidentio.edits) == 1, "what was sent is not sent again"


def test_a_burst_of_ten_description_changes_is_one_edit_of_the_summary() -> None:
    incidentio = IncidentIo()
    body = opened(incidentio)
    for change in range(10):
        edited = with_spec(body, description=f"Revision {change} of what the detector knows.")
        waiting = step(edited, incidentio, change * 0.2)
        assert waiting.plan.actions == ()
        body = waiting.body
    quiet = step(body, incidentio, 1.8 + QUIET + 1)
    (edit,) = incidentio.edits
    assert edit.changed == ("summary",)
    assert str(edit.request.summary).startswith("Revision 9 of what the detector knows.")
    assert edit.request.name is None and edit.request.severity_id is None
    assert quiet.delivery["sent"]["generation"] == 11


def test_changes_keep_deferring_the_edit_but_never_past_the_longest_wait() -> None:
    incidentio = IncidentIo()
    body: Body = opened(incidentio)
    for second in range(0, 40, 2):
        done = step(with_spec(body, description=f"Still changing at {second}s."), incidentio, second)
        body = done.body
        if incidentio.edits:
            break
    # UpdateTiming.longest (30 s) after the first change waiting, whatever comes after it.
    assert second == 30 and len(incidentio.edits) == 1


def test_a_change_that_alters_nothing_incident_io_holds_sends_nothing() -> None:
    incidentio = IncidentIo()
    body = opened(incidentio)
    asset = {**body["spec"]["asset"], "database": "prod_db_replica"}
    done = step(with_spec(body, asset=asset, snoozedUntil=None), incidentio, 10)
    assert done.plan.actions == () and done.plan.requeue_after is None
    assert done.delivery.get("pendingUpdate") is None
    later = step(done.body, incidentio, 100)
    assert later.plan.actions == () and incidentio.edits == []


def test_a_change_undone_before_the_edit_went_cancels_it() -> None:
    incidentio = IncidentIo()
    body = opened(incidentio)
    changed = step(with_spec(body, title="Column renamed"), incidentio, 1)
    assert changed.delivery["pendingUpdate"]
    undone = step(with_spec(changed.body, title=body["spec"]["title"]), incidentio, 2)
    assert undone.delivery.get("pendingUpdate") is None
    assert step(undone.body, incidentio, 10).plan.actions == () and incidentio.edits == []


def test_a_resolved_alert_is_closed_not_edited() -> None:
    incidentio = IncidentIo()
    body = opened(incidentio)
    pending = step(with_spec(body, description="More detail."), incidentio, 1).body
    closing = step(with_spec(pending, state="resolved", description="Fixed upstream."), incidentio, 10)
    assert [type(action) for action in closing.plan.actions] == [CloseIncident]
    assert incidentio.edits == []
    assert step(closing.body, incidentio, 100).plan.actions == ()


def test_a_destination_with_updates_off_never_edits() -> None:
    incidentio = IncidentIo()
    off = [destination(updates="Off")]
    body = step(alert_body(), incidentio, 0, destinations=off).body
    changed = step(with_spec(body, severity="warning"), incidentio, 1, destinations=off)
    assert changed.plan.actions == () and changed.delivery.get("pendingUpdate") is None
    assert step(changed.body, incidentio, 100, destinations=off).plan.actions == ()


def test_an_incident_opened_before_deliveries_recorded_what_they_sent_is_taken_as_current() -> None:
    incidentio = IncidentIo()
    body = opened(incidentio)
    for delivery in body["status"]["deliveries"]:
        delivery.pop("sent")
    adopted = step(body, incidentio, 1)
    assert adopted.plan.actions == ()
    assert SentRecord.from_json(adopted.delivery["sent"]) is not None
    changed = step(with_spec(adopted.body, severity="warning"), incidentio, 2)
    assert step(changed.body, incidentio, 10).plan.actions != ()


def test_a_refused_edit_is_reported_and_not_sent_again_until_the_alert_changes() -> None:
    incidentio = IncidentIo(edit_error=incidentio_error(422, "severity_id is not valid", operation="edit_incident"))
    body = with_spec(opened(incidentio), severity="warning")
    refused = step(step(body, incidentio, 1).body, incidentio, 10)
    assert len(incidentio.edits) == 1
    assert refused.settlement is not None and [e.action for e in refused.settlement.events] == ["UpdateFailed"]
    assert refused.delivery["state"] == "Open", "the incident is still open; only its edit was refused"
    assert refused.delivery["pendingUpdate"]["refused"] is True
    assert "severity_id is not valid" in refused.condition()["message"]
    assert step(refused.body, incidentio, 100).plan.actions == ()
    incidentio.edit_error = None
    retitled = step(with_spec(refused.body, title="Column customer_id dropped"), incidentio, 101)
    step(retitled.body, incidentio, 110)
    assert len(incidentio.edits) == 2 and incidentio.edits[1].changed == ("name", "summary", "severity")


def test_an_edit_that_failed_for_now_is_retried_later() -> None:
    incidentio = IncidentIo(edit_error=incidentio_error(503, "unavailable", operation="edit_incident"))
    body = with_spec(opened(incidentio), severity="warning")
    failed = step(step(body, incidentio, 1).body, incidentio, 10)
    assert failed.settlement is not None and failed.settlement.events == ()
    assert failed.delivery["pendingUpdate"]["failures"] == 1
    assert failed.settlement.requeue_after is not None and failed.settlement.requeue_after >= 5.0
    incidentio.edit_error = None
    assert step(failed.body, incidentio, 11).plan.actions == (), "not before its retry is due"
    retried = step(failed.body, incidentio, 20)
    assert retried.delivery["updates"] == 1 and len(incidentio.edits) == 2


def test_a_custom_field_follows_the_label_it_comes_from_and_is_unset_when_no_option_matches() -> None:
    team = {"id": "01TEAM", "name": "Affected Team", "type": "single_select"}
    body = destination()
    body["spec"]["incident"]["customFields"] = [{"field": "Affected Team", "from": "label", "label": "team"}]
    body["status"]["customFieldIds"] = {"Affected Team": {**team, "options": {"Payments": "01PAY", "Growth": "01GRO"}}}
    world = {"destinations": [body]}
    incidentio = IncidentIo()
    created = step(alert_body(labels={"team": "payments"}), incidentio, 0, **world)
    (create,) = created.plan.actions
    assert isinstance(create, OpenIncident)
    assert [e.to_json() for e in create.request.custom_field_entries] == [
        {"custom_field_id": "01TEAM", "values": [{"value_option_id": "01PAY"}]}
    ]

    relabelled = {**created.body, "metadata": {**created.body["metadata"], "labels": {"team": "growth"}}}
    step(step(relabelled, incidentio, 1, **world).body, incidentio, 10, **world)
    (edit,) = incidentio.edits
    assert edit.changed == ("01TEAM",)
    assert edit.request.to_json()["incident"] == {
        "custom_field_entries": [{"custom_field_id": "01TEAM", "values": [{"value_option_id": "01GRO"}]}]
    }

    unknown = {**relabelled, "metadata": {**relabelled["metadata"], "labels": {"team": "finance"}}}
    done = step(step(unknown, incidentio, 20, **world).body, incidentio, 30, **world)
    assert incidentio.edits[1].request.to_json()["incident"] == {
        "custom_field_entries": [{"custom_field_id": "01TEAM", "values": []}]
    }, "a value with no option unsets the field rather than leave the old team on the incident"
    assert done.condition()["status"] == "True"
    assert "custom field 'Affected Team' left unset: 'finance' (from label team)" in done.condition()["message"]


def test_an_incident_a_responder_ended_is_never_edited() -> None:
    incidentio = IncidentIo()
    waiting = step(with_spec(opened(incidentio), severity="warning"), incidentio, 1)
    label = waiting.delivery["destination"]
    ended = {(label, 1): "closed in incident.io (status Closed)"}
    planned = plan(replace(context(waiting.body, destinations=[destination()], now=at(10)), ended=ended))
    assert planned.actions == ()
    (delivery,) = planned.deliveries
    assert delivery.state is State.CLOSED and delivery.reason == "EndedInIncidentIo"
