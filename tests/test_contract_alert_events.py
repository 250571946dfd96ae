"""Contract: the alert events the operator builds from DataAlerts validate against the spec's request schema."""

from __future__ import annotations

import pytest

from incidentio_operator.api import DataAlert
from incidentio_operator.decisions.alertevents import alert_event, connection_test_events, deduplication_key
from incidentio_operator.incidentio import AlertEvent
from incidentio_operator.standins.simulator.spec import OPERATIONS as SIMULATED

from .factories import alert_body
from .test_contract import assert_matches


def events() -> list[AlertEvent]:
    long_text = "x" * 5000
    full = DataAlert.from_body(alert_body(link="https://app.anomalyarmor.ai/alerts/abc", description=long_text))
    bare = DataAlert.from_body(alert_body(asset={"qualifiedName": "q"}, changes=[], externalId="", detectedAt=""))
    key = deduplication_key(full.uid, full.ref, 1)
    built = [
        alert_event(status, alert.spec, alert.ref, alert.labels, "[AnomalyArmor]", ("rule-a", "rule-b"), key)
        for alert in (full, bare)
        for status in ("firing", "resolved")
    ]
    unparsed = alert_event("resolved", None, full.ref, {}, "", (), key)
    return [*built, unparsed, *connection_test_events("[AnomalyArmor]", "armor-test-1")]


@pytest.mark.parametrize("event", events(), ids=lambda event: f"{event.status}-{event.title[:24]}")
def test_every_event_the_operator_builds_matches_the_alert_event_payload(event: AlertEvent) -> None:
    schema = SIMULATED["create_alert_event"].request_schema
    assert schema == "AlertEventsCreateHTTPPayloadV2"
    assert_matches(schema, event.to_json())
