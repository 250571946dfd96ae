"""Every example manifest is one the API server accepts as written, and the set hangs together."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from incidentio_operator.offline.schema import validator_for

EXAMPLES = pathlib.Path(__file__).resolve().parents[1] / "examples"


def documents(path: pathlib.Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc]


MANIFESTS = sorted(path for path in EXAMPLES.rglob("*.yaml") if path.name != "kustomization.yaml")
OBJECTS = [(path, doc) for path in MANIFESTS for doc in documents(path)]
# examples/alert-events/: delivery mode AlertEvent, a set of its own beside the incident one.
ALERT_EVENTS = "alert-events"


def in_alert_events(path: pathlib.Path) -> bool:
    return path.relative_to(EXAMPLES).parts[0] == ALERT_EVENTS


def named(kind: str, *, alert_events: bool = False) -> dict[str, dict[str, Any]]:
    return {
        doc["metadata"]["name"]: doc
        for path, doc in OBJECTS
        if doc["kind"] == kind and in_alert_events(path) == alert_events
    }


@pytest.mark.parametrize(
    "obj", [doc for _, doc in OBJECTS], ids=[f"{p.relative_to(EXAMPLES)}:{d['metadata']['name']}" for p, d in OBJECTS]
)
def test_example_is_accepted_as_written(obj: dict[str, Any]) -> None:
    checker = validator_for(obj["apiVersion"], obj["kind"])
    if checker is None:
        assert obj["kind"] in ("Namespace", "Secret"), f"{obj['kind']} is neither ours nor expected here"
        return
    defaulted = checker.apply_defaults(obj)
    assert checker.unknown_fields(defaulted) == [], "a misspelt field would be pruned silently"
    assert [str(p) for p in checker.validate(checker.prune(defaulted))] == []
    assert obj["metadata"]["namespace"] in ("data-platform", "data-platform-events")


def test_the_set_is_complete() -> None:
    kinds = sorted(doc["kind"] for path, doc in OBJECTS if not in_alert_events(path))
    assert kinds.count("IncidentIoDestination") == 1
    assert kinds.count("AlertRule") == 3
    assert kinds.count("AlertBlackout") == 1
    assert kinds.count("DataAlert") == 5
    assert named("Namespace").keys() == {"data-platform"}
    assert named("Secret")["incidentio-api-key"]["stringData"] == {"apiKey": "sim-demo-key"}


def test_references_resolve_within_the_examples() -> None:
    destinations = named("IncidentIoDestination")
    secret_ref = destinations["incidentio-data-platform"]["spec"]["apiKeySecretRef"]
    assert secret_ref["name"] in named("Secret")
    for rule in named("AlertRule").values():
        assert [d["name"] for d in rule["spec"]["destinations"]] == ["incidentio-data-platform"]


def test_the_later_resolve_is_the_orders_alert_resolved() -> None:
    alerts = {path.relative_to(EXAMPLES).as_posix(): doc for path, doc in OBJECTS if doc["kind"] == "DataAlert"}
    triggered = alerts["alerts/orders-column-removed.yaml"]
    resolved = alerts["later/orders-column-removed-resolved.yaml"]
    assert triggered["metadata"] == resolved["metadata"]
    assert triggered["spec"]["state"] == "triggered"
    assert resolved["spec"] == dict(triggered["spec"], state="resolved")


def test_kustomization_covers_everything_but_later() -> None:
    kustomization = yaml.safe_load((EXAMPLES / "kustomization.yaml").read_text(encoding="utf-8"))
    listed = sorted(kustomization["resources"])
    expected = sorted(
        path.relative_to(EXAMPLES).as_posix()
        for path in MANIFESTS
        if path.relative_to(EXAMPLES).parts[0] not in ("later", ALERT_EVENTS)
    )
    assert listed == expected
    own = yaml.safe_load((EXAMPLES / ALERT_EVENTS / "kustomization.yaml").read_text(encoding="utf-8"))
    assert sorted(own["resources"]) == sorted(
        path.relative_to(EXAMPLES / ALERT_EVENTS).as_posix() for path in MANIFESTS if in_alert_events(path)
    )


def test_the_alert_event_set_hangs_together() -> None:
    (destination,) = named("IncidentIoDestination", alert_events=True).values()
    spec = destination["spec"]
    assert spec["delivery"] == {"mode": "AlertEvent"} and "apiKeySecretRef" not in spec
    assert named("Namespace", alert_events=True).keys() == {"data-platform-events"}
    (alert,) = named("DataAlert", alert_events=True).values()
    assert alert["spec"]["link"].startswith("https://")
    secrets = named("Secret", alert_events=True)
    assert secrets.keys() == {
        spec["alertSource"]["tokenSecretRef"]["name"],
        spec["heartbeat"]["tokenSecretRef"]["name"],
    }
    for rule in named("AlertRule", alert_events=True).values():
        assert [d["name"] for d in rule["spec"]["destinations"]] == [destination["metadata"]["name"]]
