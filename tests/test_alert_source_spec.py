"""The destination's delivery mode, alert source and heartbeat: what the CRD refuses and what the operator parses."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from incidentio_operator.api import DestinationSpec, SpecError
from incidentio_operator.api.alertsource import ALERT_EVENT_MODE

from .test_schema import destination, problems, without

SOURCE = {"configId": "01GW2G3V0S59R238FAHPDS1R66", "tokenSecretRef": {"name": "alert-source"}}
HEARTBEAT = {"alertSourceConfigId": "01GW2G3V0S59R238FAHPDS1R67", "tokenSecretRef": {"name": "heartbeat"}}


def alert_event_destination(**spec: Any) -> dict[str, Any]:
    body = destination(delivery={"mode": "AlertEvent"}, alertSource=SOURCE, **spec)
    return without(body, "spec", "apiKeySecretRef")


def test_alert_event_mode_needs_an_alert_source_but_no_api_key() -> None:
    assert problems(alert_event_destination()) == []
    refused = [str(p) for p in problems(without(alert_event_destination(), "spec", "alertSource"))]
    assert refused == [
        "spec.alertSource: Required value: delivery mode AlertEvent needs an alert source (configId and tokenSecretRef)"
    ]
    no_key = [str(p) for p in problems(without(destination(), "spec", "apiKeySecretRef"))]
    assert no_key == [
        "spec.apiKeySecretRef: Required value: the API key's Secret is required in delivery mode Incident"
    ]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"alertSource": {**SOURCE, "configId": "has/slash"}}, "spec.alertSource.configId"),
        ({"alertSource": {"configId": "01GW"}}, "spec.alertSource.tokenSecretRef"),
        ({"heartbeat": {**HEARTBEAT, "interval": "5s"}}, "spec.heartbeat.interval"),
        ({"heartbeat": {"tokenSecretRef": {"name": "heartbeat"}}}, "spec.heartbeat.alertSourceConfigId"),
        ({"delivery": {"mode": "Email"}}, "spec.delivery.mode"),
    ],
    ids=["config-id-pattern", "no-token", "heartbeat-too-often", "heartbeat-without-source", "unknown-mode"],
)
def test_bad_alert_source_or_heartbeat_fields_are_refused(change: dict[str, Any], field: str) -> None:
    assert field in [
        p.field
        for p in problems({**alert_event_destination(), "spec": {**alert_event_destination()["spec"], **change}})
    ]


def test_the_parsed_spec_carries_the_mode_source_and_heartbeat_with_their_defaults() -> None:
    spec = DestinationSpec.parse({**alert_event_destination()["spec"], "heartbeat": {**HEARTBEAT, "interval": "30s"}})
    assert spec.delivery_mode == ALERT_EVENT_MODE and spec.alert_events and spec.secret_name == ""
    assert spec.alert_source is not None and spec.alert_source.token.key == "token"
    assert spec.heartbeat is not None and spec.heartbeat.interval == datetime.timedelta(seconds=30)
    assert str(spec.heartbeat.token) == "Secret heartbeat (key token)"
    incident = DestinationSpec.parse(destination()["spec"])
    assert not incident.alert_events and incident.alert_source is None and incident.heartbeat is None


def test_a_spec_the_crd_would_refuse_does_not_parse_either() -> None:
    with pytest.raises(SpecError, match=r"spec\.alertSource"):
        DestinationSpec.parse({"delivery": {"mode": "AlertEvent"}})
    with pytest.raises(SpecError, match=r"spec\.heartbeat\.interval"):
        DestinationSpec.parse({**destination()["spec"], "heartbeat": {**HEARTBEAT, "interval": "5s"}})
