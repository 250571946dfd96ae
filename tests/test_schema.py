"""The offline API-server behaviour: defaulting, pruning and validation of our three kinds."""

from __future__ import annotations

import copy
import pathlib
import shutil
from typing import Any

import pytest

from incidentio_operator.offline.schema import (
    CRDS_ENV,
    ObjectValidator,
    SchemaProblem,
    crds_dir,
    load_crds,
    validator_for,
)

API_VERSION = "alerting.armor.dev/v1alpha1"


def validator(kind: str) -> ObjectValidator:
    found = validator_for(API_VERSION, kind)
    assert found is not None
    return found


def destination(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "IncidentIoDestination",
        "metadata": {"name": "incidentio", "namespace": "data-platform"},
        "spec": {"apiKeySecretRef": {"name": "incidentio-api-key"}, **spec},
    }


def rule(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "AlertRule",
        "metadata": {"name": "breaking", "namespace": "data-platform"},
        "spec": {"destinations": [{"name": "incidentio"}], **spec},
    }


def alert(**spec: Any) -> dict[str, Any]:
    return {
        "apiVersion": API_VERSION,
        "kind": "DataAlert",
        "metadata": {"name": "orders", "namespace": "data-platform"},
        "spec": {"title": "Column removed", "eventType": "schema_change", "severity": "critical", **spec},
    }


def problems(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[SchemaProblem]:
    checker = validator(obj["kind"])
    defaulted_old = checker.apply_defaults(old) if old is not None else None
    return checker.validate(checker.apply_defaults(obj), defaulted_old)


def without(obj: dict[str, Any], *path: str) -> dict[str, Any]:
    copied = copy.deepcopy(obj)
    parent = copied
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return copied


# Full statuses, with every field the operator writes; pruning must keep them all.
CONDITION = {
    "type": "Ready",
    "status": "True",
    "reason": "Verified",
    "message": "Connected as Data platform",
    "lastTransitionTime": "2026-11-26T10:00:00Z",
    "observedGeneration": 2,
}
FULL_STATUS = {
    "IncidentIoDestination": {
        "observedGeneration": 2,
        "conditions": [CONDITION],
        "lastTest": {
            "time": "2026-11-26T10:00:00Z",
            "result": "Succeeded",
            "mode": "CreateTestIncident",
            "message": "Success! Incident created: INC-1",
            "identityName": "Data platform",
            "roles": ["incident_creator", "incident_editor"],
            "incidentReference": "INC-1",
            "requestedAt": "2026-11-26T09:59:00Z",
        },
        "secretVersion": "sha256:0f1e",
        "closedStatus": {"id": "01FCNDV6P870EA6S7TK1DSYDG0", "name": "Closed", "category": "closed"},
        "severityIds": {"default": "01SEV3", "map": {"critical": "01SEV1", "warning": "01SEV2"}},
        "counters": {"incidentsCreated": 3, "incidentsClosed": 2, "deliveriesFailed": 1},
        "lastDelivery": {
            "time": "2026-11-26T10:05:00Z",
            "alert": "orders",
            "reference": "INC-2",
            "action": "Created",
        },
        "nextTestAt": "2026-11-26T11:00:00Z",
    },
    "AlertRule": {
        "observedGeneration": 1,
        "conditions": [CONDITION],
        "destinations": [
            {
                "name": "incidentio",
                "namespace": "data-platform",
                "ready": False,
                "reason": "NotReady",
                "message": "destination incidentio is not Ready",
            },
        ],
        "matchedAlerts": 7,
        "lastMatchedAt": "2026-11-26T10:05:00Z",
    },
    "DataAlert": {
        "observedGeneration": 3,
        "conditions": [CONDITION],
        "observedState": "triggered",
        "epoch": 2,
        "matchedRules": ["breaking", "sla"],
        "incidents": "INC-2",
        "deliveries": [
            {
                "destination": "incidentio",
                "rules": ["breaking", "sla"],
                "epoch": 2,
                "idempotencyKey": "dataalert/data-platform/orders/incidentio/2",
                "state": "Open",
                "incidentId": "01FDAG4SAP5TYPT98WGR2N7W91",
                "reference": "INC-2",
                "permalink": "https://app.incident.io/incidents/2",
                "attempts": 1,
                "lastError": "",
                "waitingFor": "",
                "alertGeneration": 3,
                "destinationGeneration": 2,
                "openedAt": "2026-11-26T10:05:00Z",
                "closedAt": "2026-11-26T11:05:00Z",
                "nextAttemptAt": "2026-11-26T10:06:00Z",
            },
            {"destination": "other/incidentio", "epoch": 1, "state": "Closed"},
        ],
    },
}
OBJECTS = {"IncidentIoDestination": destination(), "AlertRule": rule(), "DataAlert": alert()}


# Defaulting.


def test_a_minimal_destination_gets_every_default() -> None:
    checker = validator("IncidentIoDestination")
    minimal = destination()
    spec = checker.apply_defaults(minimal)["spec"]
    assert spec == {
        "apiKeySecretRef": {"name": "incidentio-api-key", "key": "apiKey"},
        "incident": {
            "namePrefix": "[AnomalyArmor]",
            "visibility": "public",
            "mode": "standard",
            "notifyIncidentChannel": True,
            "updates": "On",
        },
        "connectionTest": {"onCreate": "Verify", "interval": "1h"},
        "delivery": {"mode": "Incident"},
        "driftCheck": {"interval": "10m"},
        "baseURL": "https://api.incident.io",
        "suspend": False,
    }
    assert minimal == destination(), "apply_defaults returns a new object"
    assert checker.validate(checker.apply_defaults(minimal)) == []


def test_defaults_fill_only_what_is_missing() -> None:
    spec = validator("IncidentIoDestination").apply_defaults(
        destination(incident={"visibility": "private", "notifyIncidentChannel": False})
    )["spec"]
    assert spec["incident"]["visibility"] == "private"
    assert spec["incident"]["notifyIncidentChannel"] is False
    assert spec["incident"]["mode"] == "standard"


def test_alert_and_rule_defaults() -> None:
    assert validator("DataAlert").apply_defaults(alert())["spec"]["state"] == "triggered"
    assert validator("DataAlert").apply_defaults(alert())["spec"]["source"] == "AnomalyArmor"
    assert validator("AlertRule").apply_defaults(rule())["spec"]["suspend"] is False


def test_null_fields_are_dropped_or_defaulted_like_the_api_server_does() -> None:
    spec = validator("DataAlert").apply_defaults(alert(state=None, description=None))["spec"]
    assert spec["state"] == "triggered"
    assert "description" not in spec


# Validation of bad objects: each is refused with a problem on the right field.

BAD_OBJECTS: list[tuple[str, dict[str, Any], str, str]] = [
    ("alert state", alert(state="open"), "spec.state", 'Unsupported value: "open"'),
    ("alert severity", alert(severity="high"), "spec.severity", 'supported values: "info", "warning", "critical"'),
    ("alert title missing", without(alert(), "spec", "title"), "spec.title", "Required value"),
    ("alert severity missing", without(alert(), "spec", "severity"), "spec.severity", "Required value"),
    ("alert event type pattern", alert(eventType="Schema-Change"), "spec.eventType", "should match"),
    ("alert title too long", alert(title="x" * 251), "spec.title", "Too long: may not be longer than 250"),
    ("alert description too long", alert(description="x" * 4001), "spec.description", "Too long"),
    (
        "alert changes on freshness",
        alert(eventType="freshness_violation", changes=[{"type": "column_removed"}]),
        "spec.changes",
        "Forbidden: changes are only allowed when eventType is schema_change",
    ),
    ("alert change type missing", alert(changes=[{"column": "id"}]), "spec.changes[0].type", "Required value"),
    ("alert too many changes", alert(changes=[{"type": "column_added"}] * 101), "spec.changes", "Too many: 101"),
    ("alert detectedAt", alert(detectedAt="yesterday"), "spec.detectedAt", "must be of type date-time"),
    ("alert title type", alert(title=42), "spec.title", "must be of type string"),
    ("alert spec missing", without(alert(), "spec"), "spec", "Required value"),
    (
        "visibility",
        destination(incident={"visibility": "secret"}),
        "spec.incident.visibility",
        'Unsupported value: "secret": supported values: "public", "private"',
    ),
    ("mode", destination(incident={"mode": "live"}), "spec.incident.mode", 'Unsupported value: "live"'),
    (
        "onCreate",
        destination(connectionTest={"onCreate": "Ping"}),
        "spec.connectionTest.onCreate",
        'supported values: "Verify", "CreateTestIncident"',
    ),
    (
        "interval 5x",
        destination(connectionTest={"interval": "5x"}),
        "spec.connectionTest.interval",
        "interval must be a duration such as 30m or 1h, and at least 1m",
    ),
    ("interval 10s", destination(connectionTest={"interval": "10s"}), "spec.connectionTest.interval", "at least 1m"),
    ("baseURL", destination(baseURL="api.incident.io"), "spec.baseURL", "should match '^https?://'"),
    (
        "severity map key",
        destination(incident={"severity": {"map": {"high": "Critical"}}}),
        "spec.incident.severity.map",
        "severity map keys must be info, warning or critical",
    ),
    ("secret ref missing", without(destination(), "spec", "apiKeySecretRef"), "spec.apiKeySecretRef", "Required value"),
    (
        "secret name missing",
        destination(apiKeySecretRef={"key": "token"}),
        "spec.apiKeySecretRef.name",
        "Required value",
    ),
    ("suspend type", destination(suspend="yes"), "spec.suspend", "must be of type boolean"),
    (
        "notify type",
        destination(incident={"notifyIncidentChannel": "true"}),
        "spec.incident.notifyIncidentChannel",
        "must be of type boolean",
    ),
    ("empty destinations", rule(destinations=[]), "spec.destinations", "a rule needs at least one destination"),
    ("empty destinations minItems", rule(destinations=[]), "spec.destinations", "should have at least 1 items"),
    ("destinations missing", without(rule(), "spec", "destinations"), "spec.destinations", "Required value"),
    (
        "destination name missing",
        rule(destinations=[{"namespace": "other"}]),
        "spec.destinations[0].name",
        "Required value",
    ),
    (
        "changeTypes on freshness",
        rule(eventTypes=["freshness_violation"], conditions={"changeTypes": ["column_removed"]}),
        "spec.conditions.changeTypes",
        "conditions.changeTypes apply to schema changes only",
    ),
    ("rule severity", rule(severities=["urgent"]), "spec.severities[0]", 'Unsupported value: "urgent"'),
    ("rule event type", rule(eventTypes=["Schema Change"]), "spec.eventTypes[0]", "should match"),
    (
        "rule duplicate event type",
        rule(eventTypes=["schema_change", "schema_change"]),
        "spec.eventTypes[1]",
        "Duplicate value",
    ),
    (
        "rule environments type",
        rule(scope={"environments": "production"}),
        "spec.scope.environments",
        "must be of type array",
    ),
    (
        "selector operator",
        rule(scope={"assetSelector": {"matchExpressions": [{"key": "team", "operator": "Is"}]}}),
        "spec.scope.assetSelector.matchExpressions[0].operator",
        'Unsupported value: "Is"',
    ),
    (
        "selector In without values",
        rule(scope={"assetSelector": {"matchExpressions": [{"key": "team", "operator": "In"}]}}),
        "spec.scope.assetSelector.matchExpressions[0].values",
        "values must be non-empty for In and NotIn",
    ),
    (
        "selector Exists with values",
        rule(scope={"assetSelector": {"matchExpressions": [{"key": "team", "operator": "Exists", "values": ["a"]}]}}),
        "spec.scope.assetSelector.matchExpressions[0].values",
        "empty for Exists and DoesNotExist",
    ),
    (
        "selector label type",
        rule(scope={"assetSelector": {"matchLabels": {"team": 1}}}),
        "spec.scope.assetSelector.matchLabels[team]",
        "must be of type string",
    ),
]


@pytest.mark.parametrize(
    ("obj", "field", "message"), [case[1:] for case in BAD_OBJECTS], ids=[case[0] for case in BAD_OBJECTS]
)
def test_bad_objects_are_refused_naming_the_field(obj: dict[str, Any], field: str, message: str) -> None:
    found = problems(obj)
    assert any(p.field == field and message in p.message for p in found), [str(p) for p in found]


def test_messages_read_like_the_api_servers() -> None:
    found = problems(destination(incident={"visibility": "secret"}))
    assert [str(p) for p in found] == [
        'spec.incident.visibility: Unsupported value: "secret": supported values: "public", "private"'
    ]
    assert [str(p) for p in problems(without(alert(), "spec", "title"))] == ["spec.title: Required value"]
    assert [str(p) for p in problems(alert(eventType="Bad"))] == [
        "spec.eventType: Invalid value: \"Bad\": spec.eventType in body should match '^[a-z][a-z0-9_]*$'"
    ]
    assert [str(p) for p in problems(alert(title=42))] == [
        'spec.title: Invalid value: "integer": spec.title in body must be of type string: "integer"',
        "some validation rules were not checked because the object was invalid; "
        "correct the existing errors to complete validation",
    ]


def test_type_errors_stop_cel_rules_as_in_the_api_server() -> None:
    found = problems(alert(eventType="freshness_violation", changes=[{"type": "column_removed"}], title=42))
    assert not any("only allowed" in p.message for p in found)
    assert any(p.field == "" and "some validation rules were not checked" in p.message for p in found)


def test_kind_and_api_version_must_be_the_validators() -> None:
    checker = validator("DataAlert")
    found = checker.validate(checker.apply_defaults(dict(alert(), kind="AlertRule", apiVersion="v1")))
    assert {p.field for p in found} == {"kind", "apiVersion"}


@pytest.mark.parametrize("interval", ["1m", "90s", "1h30m", "2h", "60s", "1h0m0s"])
def test_intervals_of_at_least_a_minute_are_accepted(interval: str) -> None:
    assert problems(destination(connectionTest={"interval": interval})) == []


@pytest.mark.parametrize("interval", ["", "59s", "0m", "1.5h", "1d", "-1h", "1H", " 1h"])
def test_other_intervals_are_refused(interval: str) -> None:
    assert [p.field for p in problems(destination(connectionTest={"interval": interval}))] == [
        "spec.connectionTest.interval"
    ]


@pytest.mark.parametrize("event_types", [None, [], ["schema_change"], ["freshness_violation", "schema_change"]])
def test_change_types_are_allowed_with_schema_changes(event_types: list[str] | None) -> None:
    spec: dict[str, Any] = {"conditions": {"changeTypes": ["column_removed"]}}
    if event_types is not None:
        spec["eventTypes"] = event_types
    assert problems(rule(**spec)) == []


def test_changes_are_allowed_on_schema_changes_and_empty_elsewhere() -> None:
    assert problems(alert(changes=[{"type": "column_removed", "column": "id"}])) == []
    assert problems(alert(eventType="freshness_violation", changes=[])) == []


def test_label_selectors_accept_what_kubernetes_accepts() -> None:
    selector = {
        "matchLabels": {"team": "payments"},
        "matchExpressions": [
            {"key": "tier", "operator": "In", "values": ["gold"]},
            {"key": "legacy", "operator": "DoesNotExist"},
        ],
    }
    assert problems(rule(scope={"assetSelector": selector})) == []


def test_severity_map_with_every_alert_severity_is_accepted() -> None:
    severity = {"default": "Minor", "map": {"critical": "Critical", "warning": "Major", "info": "Minor"}}
    assert problems(destination(incident={"severity": severity})) == []


# Transition rules (oldSelf) run on updates only.


def test_external_id_cannot_change_on_update() -> None:
    old = alert(externalId="alert_abc123")
    assert problems(alert(externalId="alert_other")) == []
    assert problems(alert(externalId="alert_abc123", state="resolved"), old) == []
    found = problems(alert(externalId="alert_other"), old)
    assert [(p.field, p.message) for p in found] == [
        ("spec.externalId", 'Invalid value: "string": externalId is immutable')
    ]


def test_external_id_may_be_set_on_update_when_it_had_none() -> None:
    assert problems(alert(externalId="alert_abc123"), alert()) == []


# Status: every field the operator writes is valid and survives pruning.


@pytest.mark.parametrize("kind", sorted(FULL_STATUS))
def test_a_full_status_is_valid_and_nothing_of_it_is_pruned(kind: str) -> None:
    checker = validator(kind)
    obj = checker.apply_defaults(dict(OBJECTS[kind], status=FULL_STATUS[kind]))
    assert checker.unknown_fields(obj) == []
    assert checker.prune(obj)["status"] == FULL_STATUS[kind]
    assert checker.validate(obj) == []


def test_pruning_drops_unknown_spec_and_status_fields_only() -> None:
    checker = validator("DataAlert")
    status = dict(FULL_STATUS["DataAlert"], lastSeen="2026-11-26T10:00:00Z")
    obj = dict(alert(asset={"table": "orders", "owner": "payments"}, priority=1), status=status)
    obj["metadata"] = {"name": "orders", "labels": {"team": "payments"}, "annotations": {"a": "b"}}
    pruned = checker.prune(obj)
    assert "priority" not in pruned["spec"]
    assert pruned["spec"]["asset"] == {"table": "orders"}
    assert "lastSeen" not in pruned["status"]
    assert pruned["status"] == FULL_STATUS["DataAlert"]
    assert pruned["metadata"] == obj["metadata"]
    assert (pruned["apiVersion"], pruned["kind"]) == (API_VERSION, "DataAlert")
    assert sorted(checker.unknown_fields(obj)) == ["spec.asset.owner", "spec.priority", "status.lastSeen"]
    assert obj["spec"]["priority"] == 1, "prune returns a new object"


def test_pruning_keeps_map_entries_and_drops_unknown_fields_inside_list_items() -> None:
    checker = validator("IncidentIoDestination")
    status = {"conditions": [dict(CONDITION, extra="x")], "severityIds": {"map": {"critical": "01SEV1"}}}
    pruned = checker.prune(dict(destination(), status=status))
    assert pruned["status"] == {"conditions": [CONDITION], "severityIds": {"map": {"critical": "01SEV1"}}}
    assert checker.unknown_fields(dict(destination(), status=status)) == ["status.conditions[0].extra"]


def test_status_conditions_are_a_map_list_keyed_by_type() -> None:
    status = {"conditions": [CONDITION, dict(CONDITION, status="False")]}
    found = problems(dict(alert(), status=status))
    assert [(p.field, p.message) for p in found] == [("status.conditions[1]", 'Duplicate value: {"type":"Ready"}')]


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("state", "Done", 'Unsupported value: "Done"'),
        ("epoch", "1", "must be of type integer"),
        ("openedAt", "soon", "must be of type date-time"),
    ],
)
def test_bad_delivery_status_fields_are_refused(field: str, value: Any, message: str) -> None:
    delivery = dict(FULL_STATUS["DataAlert"]["deliveries"][0], **{field: value})
    found = problems(dict(alert(), status={"deliveries": [delivery]}))
    assert any(p.field == f"status.deliveries[0].{field}" and message in p.message for p in found), found


def test_deliveries_need_destination_epoch_and_state() -> None:
    found = problems(dict(alert(), status={"deliveries": [{"reference": "INC-1"}]}))
    assert sorted(p.field for p in found) == [
        "status.deliveries[0].destination",
        "status.deliveries[0].epoch",
        "status.deliveries[0].state",
    ]


# Finding CRDs and validators.


def test_validator_for_knows_our_kinds_only() -> None:
    assert validator("DataAlert").plural == "dataalerts"
    assert validator("AlertRule").api_version == API_VERSION
    assert validator_for(API_VERSION, "Deployment") is None
    assert validator_for("alerting.armor.dev/v1", "DataAlert") is None
    assert validator_for("apps/v1", "Deployment") is None


def test_validators_are_built_once_per_crd() -> None:
    crds = load_crds()
    assert validator_for(API_VERSION, "DataAlert", crds) is validator_for(API_VERSION, "DataAlert", crds)
    assert ObjectValidator.from_crd(crds[0]) is ObjectValidator.from_crd(crds[0])


def test_unknown_version_is_an_error() -> None:
    with pytest.raises(ValueError, match="no version v9"):
        ObjectValidator.from_crd(load_crds()[0], "v9")


def test_crds_dir_follows_the_environment(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert (crds_dir() / "dataalerts.yaml").is_file()
    shutil.copy(crds_dir() / "dataalerts.yaml", tmp_path / "dataalerts.yaml")
    (tmp_path / "kustomization.yaml").write_text("resources: [dataalerts.yaml]\n")
    monkeypatch.setenv(CRDS_ENV, str(tmp_path))
    assert crds_dir() == tmp_path
    assert [crd["spec"]["names"]["kind"] for crd in load_crds()] == ["DataAlert"]
    assert validator_for(API_VERSION, "AlertRule") is None
    assert validator_for(API_VERSION, "DataAlert") is not None
