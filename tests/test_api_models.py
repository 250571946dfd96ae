"""The typed models of the three kinds: parsing Kubernetes bodies, spec errors, conditions, durations and times."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from incidentio_operator.api import (
    AlertRule,
    Condition,
    DataAlert,
    Destination,
    ObjectRef,
    SpecError,
    format_time,
    parse_time,
    ready_conditions,
)
from incidentio_operator.api.common import parse_duration

from .factories import CLOSED_STATUS_ID, DESTINATION, NAMESPACE, NOW, alert_body, destination_body, rule_body

# --- DataAlert ---------------------------------------------------------------------------------------------


def test_alert_parses_every_field_of_the_design_example() -> None:
    alert = DataAlert.from_body(alert_body(generation=3, labels={"team": "payments"}))

    assert alert.spec_error is None
    assert alert.spec is not None
    assert alert.ref == ObjectRef(NAMESPACE, "orders-column-removed-7f3a")
    assert alert.uid == "3f0c7a52-alert-uid"
    assert alert.generation == 3
    assert alert.labels == {"team": "payments"}
    assert alert.resource_version == "100"
    assert not alert.deleting
    spec = alert.spec
    assert (spec.title, spec.event_type, spec.severity, spec.state) == (
        "Column customer_id removed from orders",
        "schema_change",
        "critical",
        "triggered",
    )
    assert spec.external_id == "alert_abc123"
    assert spec.asset.qualified_name == "snowflake.prod_db.sales.orders"
    assert (spec.asset.environment, spec.asset.database, spec.asset.schema, spec.asset.table) == (
        "production",
        "prod_db",
        "sales",
        "orders",
    )
    assert [(change.type, change.column) for change in spec.changes] == [("column_removed", "customer_id")]
    assert spec.detected_at == "2026-11-26T10:00:00Z"


def test_alert_defaults_state_to_triggered_and_source_to_anomalyarmor() -> None:
    spec = {"title": "Orders late", "eventType": "freshness_violation", "severity": "warning"}

    alert = DataAlert.from_body(alert_body(spec=spec))

    assert alert.spec is not None
    assert alert.spec.state == "triggered"
    assert alert.spec.source == "AnomalyArmor"
    assert alert.spec.changes == ()


def test_alert_with_deletion_timestamp_is_deleting_and_keeps_its_finalizers() -> None:
    alert = DataAlert.from_body(alert_body(deleting=True))

    assert alert.deleting
    assert alert.finalizers == ("alerting.armor.dev/close-incidents",)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"title": ""}, "spec.title"),
        ({"eventType": ""}, "spec.eventType"),
        ({"severity": "high"}, "spec.severity"),
        ({"state": "closed"}, "spec.state"),
        ({"title": 42}, "spec.title"),
        ({"asset": "snowflake.prod_db.sales.orders"}, "spec.asset"),
        ({"changes": ["column_removed"]}, "spec.changes[0]"),
        ({"eventType": "freshness_violation"}, "spec.changes"),
    ],
    ids=[
        "no-title",
        "no-event-type",
        "unknown-severity",
        "unknown-state",
        "title-not-text",
        "asset-not-object",
        "change-not-object",
        "changes-on-non-schema-event",
    ],
)
def test_alert_spec_that_does_not_parse_is_kept_as_a_spec_error_naming_the_field(
    overrides: dict[str, Any], field: str
) -> None:
    alert = DataAlert.from_body(alert_body(**overrides))

    assert alert.spec is None
    assert isinstance(alert.spec_error, SpecError)
    assert alert.spec_error.field == field
    assert alert.spec_error.message
    assert str(alert.spec_error).startswith(f"{field}: ")


# --- IncidentIoDestination ---------------------------------------------------------------------------------


def test_destination_applies_the_documented_defaults() -> None:
    destination = Destination.from_body(destination_body(spec={"apiKeySecretRef": {"name": "incidentio-api-key"}}))

    spec = destination.spec
    assert spec is not None, destination.spec_error
    assert spec.secret_name == "incidentio-api-key"
    assert spec.secret_key == "apiKey"
    assert spec.closed_status_id == ""
    assert spec.incident.name_prefix == "[AnomalyArmor]"
    assert spec.incident.visibility == "public"
    assert spec.incident.mode == "standard"
    assert spec.incident.notify_incident_channel is True
    assert not spec.incident.severity.configured
    assert spec.connection_test.on_create == "Verify"
    assert spec.connection_test.interval == datetime.timedelta(hours=1)
    assert spec.base_url == "https://api.incident.io"
    assert spec.suspend is False


def test_destination_parses_the_design_example() -> None:
    body = destination_body(
        spec={
            "apiKeySecretRef": {"name": "incidentio-api-key", "key": "token"},
            "closedStatusId": CLOSED_STATUS_ID,
            "incident": {
                "namePrefix": "[Data]",
                "visibility": "private",
                "mode": "test",
                "severity": {"default": "Minor", "map": {"critical": "Critical", "warning": "Major"}},
                "incidentTypeId": "01TYPE",
                "notifyIncidentChannel": False,
            },
            "connectionTest": {"onCreate": "CreateTestIncident", "interval": "30m"},
            "baseURL": "http://127.0.0.1:8089/",
            "suspend": True,
        }
    )

    spec = Destination.from_body(body).spec

    assert spec is not None
    assert spec.secret_key == "token"
    assert spec.closed_status_id == CLOSED_STATUS_ID
    assert (spec.incident.name_prefix, spec.incident.visibility, spec.incident.mode) == ("[Data]", "private", "test")
    assert spec.incident.severity.default == "Minor"
    assert spec.incident.severity.by_alert_severity == {"critical": "Critical", "warning": "Major"}
    assert spec.incident.incident_type_id == "01TYPE"
    assert spec.incident.notify_incident_channel is False
    assert spec.connection_test.on_create == "CreateTestIncident"
    assert spec.connection_test.interval == datetime.timedelta(minutes=30)
    assert spec.base_url == "http://127.0.0.1:8089", "a trailing slash would double up in request paths"
    assert spec.suspend is True


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({"apiKeySecretRef": {}}, "spec.apiKeySecretRef.name"),
        ({"apiKeySecretRef": {"name": ""}}, "spec.apiKeySecretRef.name"),
        ({"incident": {"visibility": "secret"}}, "spec.incident.visibility"),
        ({"incident": {"mode": "live"}}, "spec.incident.mode"),
        ({"incident": {"severity": {"map": {"fatal": "Critical"}}}}, "spec.incident.severity.map.fatal"),
        ({"incident": {"notifyIncidentChannel": "yes"}}, "spec.incident.notifyIncidentChannel"),
        ({"connectionTest": {"interval": "hourly"}}, "spec.connectionTest.interval"),
        ({"connectionTest": {"interval": "30s"}}, "spec.connectionTest.interval"),
        ({"connectionTest": {"onCreate": "Ping"}}, "spec.connectionTest.onCreate"),
        ({"baseURL": "api.incident.io"}, "spec.baseURL"),
    ],
    ids=[
        "no-secret-ref",
        "empty-secret-name",
        "bad-visibility",
        "bad-mode",
        "bad-severity-key",
        "notify-not-bool",
        "interval-not-duration",
        "interval-under-a-minute",
        "bad-on-create",
        "base-url-without-scheme",
    ],
)
def test_destination_spec_errors_name_the_field(spec: dict[str, Any], field: str) -> None:
    full = {"apiKeySecretRef": {"name": "incidentio-api-key"}, **spec}

    destination = Destination.from_body(destination_body(spec=full))

    assert destination.spec is None
    assert destination.spec_error is not None
    assert destination.spec_error.field == field


def test_destination_is_ready_when_its_test_passed_for_the_current_generation() -> None:
    assert Destination.from_body(destination_body(ready=True)).ready


def test_destination_whose_test_failed_is_not_ready_and_says_why() -> None:
    destination = Destination.from_body(destination_body(ready=False))

    assert not destination.ready
    assert destination.not_ready_reason == "Unauthorized: HTTP 401: Unauthorized"


def test_destination_whose_test_ran_for_an_older_generation_is_not_ready() -> None:
    body = destination_body(ready=True, generation=2)
    body["status"]["observedGeneration"] = 1

    destination = Destination.from_body(body)

    assert not destination.ready
    assert destination.not_ready_reason == "connection test not run yet"


def test_destination_without_status_is_not_ready() -> None:
    body = destination_body()
    del body["status"]

    assert not Destination.from_body(body).ready


def test_destination_being_deleted_is_not_ready() -> None:
    body = destination_body(ready=True)
    body["metadata"]["deletionTimestamp"] = "2026-11-26T11:00:00Z"

    destination = Destination.from_body(body)

    assert not destination.ready
    assert destination.not_ready_reason == "being deleted"


def test_destination_exposes_the_severity_ids_its_connection_test_resolved() -> None:
    ids = {"default": "01MINOR", "map": {"critical": "01CRIT"}}

    assert Destination.from_body(destination_body(severity_ids=ids)).severity_ids == ids
    assert Destination.from_body(destination_body()).severity_ids == {}


# --- AlertRule ---------------------------------------------------------------------------------------------


def test_rule_parses_the_design_example() -> None:
    body = rule_body(
        eventTypes=["schema_change"],
        severities=["critical", "warning"],
        scope={
            "environments": ["production"],
            "databases": ["prod_*"],
            "schemas": {"include": ["*"], "exclude": ["tmp_*"]},
            "tables": {"include": ["*"], "exclude": ["*_staging"]},
            "assetSelector": {
                "matchLabels": {"team": "payments"},
                "matchExpressions": [{"key": "tier", "operator": "In", "values": ["gold"]}],
            },
        },
        conditions={"changeTypes": ["column_removed", "column_type_changed"]},
    )

    rule = AlertRule.from_body(body)

    assert rule.spec is not None, rule.spec_error
    spec = rule.spec
    assert rule.ref == ObjectRef(NAMESPACE, "production-breaking-changes")
    assert spec.event_types == ("schema_change",)
    assert spec.severities == ("critical", "warning")
    assert spec.scope.environments == ("production",)
    assert spec.scope.databases == ("prod_*",)
    assert (spec.scope.schemas.include, spec.scope.schemas.exclude) == (("*",), ("tmp_*",))
    assert (spec.scope.tables.include, spec.scope.tables.exclude) == (("*",), ("*_staging",))
    assert spec.scope.asset_selector.match_labels == {"team": "payments"}
    assert [(r.key, r.operator, r.values) for r in spec.scope.asset_selector.match_expressions] == [
        ("tier", "In", ("gold",))
    ]
    assert spec.change_types == ("column_removed", "column_type_changed")
    assert [d.name for d in spec.destinations] == [DESTINATION]
    assert spec.suspend is False


def test_rule_destination_reference_resolves_in_the_rules_namespace_unless_it_names_one() -> None:
    rule = AlertRule.from_body(rule_body(destinations=[DESTINATION, {"name": "shared", "namespace": "platform"}]))

    assert rule.spec is not None
    assert [d.resolve(NAMESPACE) for d in rule.spec.destinations] == [
        ObjectRef(NAMESPACE, DESTINATION),
        ObjectRef("platform", "shared"),
    ]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (rule_body(destinations=[]), "spec.destinations"),
        (rule_body(destinations=[{"name": ""}]), "spec.destinations[0].name"),
        (rule_body(eventTypes="schema_change"), "spec.eventTypes"),
        (rule_body(severities=[1]), "spec.severities"),
        (rule_body(scope={"databases": "prod_*"}), "spec.scope.databases"),
        (rule_body(scope={"tables": ["orders"]}), "spec.scope.tables"),
        (
            rule_body(scope={"assetSelector": {"matchExpressions": [{"key": "team", "operator": "Equals"}]}}),
            "spec.scope.assetSelector.matchExpressions[0].operator",
        ),
        (rule_body(suspend="no"), "spec.suspend"),
    ],
    ids=[
        "no-destinations",
        "unnamed-destination",
        "event-types-not-list",
        "severities-not-text",
        "databases-not-list",
        "tables-not-object",
        "unknown-selector-operator",
        "suspend-not-bool",
    ],
)
def test_rule_spec_errors_name_the_field(body: dict[str, Any], field: str) -> None:
    rule = AlertRule.from_body(body)

    assert rule.spec is None
    assert rule.spec_error is not None
    assert rule.spec_error.field == field


# --- durations and times -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("1h", 3600), ("30m", 1800), ("45s", 45), ("1h30m", 5400), ("1h30m15s", 5415), ("1.5h", 5400), (" 2m ", 120)],
)
def test_parse_duration_reads_go_style_durations(text: str, seconds: float) -> None:
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize(("text", "seconds"), [("500ms", 0.5), ("1m500ms", 60.5)])
def test_parse_duration_reads_milliseconds(text: str, seconds: float) -> None:
    assert parse_duration(text) == datetime.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "   ", "h", "10", "1x", "1h 30m", "one hour", "-1h", "1h-"])
def test_parse_duration_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_format_time_writes_utc_with_second_precision() -> None:
    cest = datetime.timezone(datetime.timedelta(hours=2))

    assert format_time(datetime.datetime(2026, 11, 26, 12, 0, 5, 999_000, tzinfo=cest)) == "2026-11-26T10:00:05Z"


def test_parse_time_reads_what_format_time_writes() -> None:
    assert parse_time(format_time(NOW)) == NOW
    assert parse_time("2026-11-26T10:00:00") == NOW, "a time without zone is UTC"
    assert parse_time("") is None
    assert parse_time(None) is None
    assert parse_time("yesterday") is None


# --- conditions --------------------------------------------------------------------------------------------


def _by_type(conditions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {condition["type"]: condition for condition in conditions}


def test_ready_object_is_ready_and_neither_reconciling_nor_stalled() -> None:
    conditions = _by_type(ready_conditions(ready=True, reason="Delivered", message="ok", generation=4, now=NOW))

    assert {kind: c["status"] for kind, c in conditions.items()} == {
        "Ready": "True",
        "Reconciling": "False",
        "Stalled": "False",
    }
    assert conditions["Ready"] == {
        "type": "Ready",
        "status": "True",
        "reason": "Delivered",
        "message": "ok",
        "lastTransitionTime": "2026-11-26T10:00:00Z",
        "observedGeneration": 4,
    }


def test_not_ready_object_in_progress_is_reconciling() -> None:
    conditions = _by_type(
        ready_conditions(ready=False, reason="Delivering", message="opening", generation=1, progressing=True, now=NOW)
    )

    assert conditions["Ready"]["status"] == "False"
    assert conditions["Reconciling"]["status"] == "True"
    assert conditions["Reconciling"]["message"] == "opening"
    assert conditions["Stalled"]["status"] == "False"


def test_not_ready_object_not_in_progress_is_stalled() -> None:
    conditions = _by_type(
        ready_conditions(ready=False, reason="DeliveryFailed", message="HTTP 422", generation=1, now=NOW)
    )

    assert conditions["Ready"]["status"] == "False"
    assert conditions["Reconciling"]["status"] == "False"
    assert conditions["Stalled"]["status"] == "True"
    assert conditions["Stalled"]["message"] == "HTTP 422"


def test_condition_keeps_its_transition_time_while_its_status_holds() -> None:
    earlier = Condition("Ready", "True", "Delivered", "").to_json(now=NOW)
    later = NOW + datetime.timedelta(hours=1)

    same = Condition("Ready", "True", "Delivered", "another message").to_json([earlier], now=later)
    flipped = Condition("Ready", "False", "Retrying", "HTTP 503").to_json([earlier], now=later)

    assert same["lastTransitionTime"] == "2026-11-26T10:00:00Z"
    assert flipped["lastTransitionTime"] == "2026-11-26T11:00:00Z"


def test_condition_without_generation_omits_observed_generation() -> None:
    assert "observedGeneration" not in Condition("Ready", "True", "Verified", "").to_json(now=NOW)


def test_an_alerts_status_is_parsed_once_for_all_its_readers() -> None:
    delivered = {"epoch": 1, "deliveries": [{"destination": DESTINATION, "epoch": 1, "state": "Open"}]}
    alert = DataAlert.from_body(alert_body(status=delivered))
    assert alert.status == delivered
    assert alert.status is alert.status, "routing, planning and readiness share one parse"
    resolved = DataAlert.from_body(alert_body(status={**delivered, "observedState": "resolved"}))
    assert resolved.status["observedState"] == "resolved" and "observedState" not in alert.status


def test_an_alert_at_rest_keeps_its_status_compressed_and_reads_it_back_whole() -> None:
    ready = {"type": "Ready", "status": "True", "reason": "Closed", "message": "Incident INC-1 closed"}
    closed = {"destination": DESTINATION, "epoch": 1, "state": "Closed", "attempts": 1, "reference": "INC-1"}
    settled = {"observedGeneration": 1, "conditions": [ready], "deliveries": [closed], "matchedRules": ["r"]}
    at_rest = DataAlert.from_body(alert_body(status=settled))
    assert isinstance(at_rest.status_json, bytes) and len(at_rest.status_json) < len(str(settled))
    assert at_rest.status == settled and at_rest.matched_rules == ("r",) and not at_rest.unsettled

    holding = DataAlert.from_body(alert_body(status={**settled, "deliveries": [{**closed, "state": "Open"}]}))
    assert isinstance(holding.status_json, str) and holding.holding == (DESTINATION,)
    unsettled = DataAlert.from_body(alert_body(status={**settled, "observedGeneration": 0}))
    assert isinstance(unsettled.status_json, str) and unsettled.unsettled


def test_an_alert_as_written_back_keeps_its_parsed_spec_until_the_generation_changes() -> None:
    before = DataAlert.from_body(alert_body())
    written = DataAlert.from_body(alert_body(status={"epoch": 1}), before=before)
    assert written.spec is before.spec and written.status == {"epoch": 1}
    edited = alert_body(generation=2, title="Column customer_id removed again")
    changed = DataAlert.from_body(edited, before=before)
    assert changed.spec is not None and changed.spec.title == "Column customer_id removed again"
    recreated = alert_body(uid="another-uid")
    assert DataAlert.from_body(recreated, before=before).spec is not before.spec, "another object of the same name"
