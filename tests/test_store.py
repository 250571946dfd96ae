"""The in-memory index: newer versions replace older ones, stale watch events never do."""

from __future__ import annotations

import random
from typing import Any

import pytest

from incidentio_operator.api import DataAlert, ObjectRef
from incidentio_operator.controller.store import AlertIndex, Index, Store

from .factories import NAMESPACE, alert_body

REF = ObjectRef(NAMESPACE, "orders-column-removed-7f3a")


def _version(resource_version: str, **spec: Any) -> tuple[DataAlert, dict[str, Any]]:
    body = alert_body(**spec)
    body["metadata"]["resourceVersion"] = resource_version
    return DataAlert.from_body(body), body


def _index_holding(resource_version: str) -> Index[DataAlert]:
    index: Index[DataAlert] = Index()
    assert index.upsert(*_version(resource_version, state="triggered"))
    return index


def test_first_version_is_stored() -> None:
    index: Index[DataAlert] = Index()
    alert, body = _version("7")

    assert index.upsert(alert, body) is True
    assert index.get(REF) is alert
    reference = index.reference(REF)
    assert reference is not None
    assert reference["metadata"] == {k: body["metadata"].get(k) for k in ("name", "namespace", "uid")}
    assert (reference["apiVersion"], reference["kind"]) == (body["apiVersion"], body["kind"])
    assert len(index) == 1


@pytest.mark.parametrize(("stored", "newer"), [("7", "8"), ("9", "10"), ("99", "100")])
def test_newer_version_replaces_the_stored_one(stored: str, newer: str) -> None:
    index = _index_holding(stored)

    assert index.upsert(*_version(newer, state="resolved")) is True
    alert = index.get(REF)
    assert alert is not None and alert.spec is not None
    assert alert.spec.state == "resolved"
    assert alert.resource_version == newer


def test_versions_compare_as_integers_not_as_text() -> None:
    index = _index_holding("9")

    assert index.upsert(*_version("10", state="resolved")) is True, "'10' < '9' as text, but it is newer"


@pytest.mark.parametrize("older", ["9", "99"])
def test_older_version_is_ignored(older: str) -> None:
    index = _index_holding("100")

    assert index.upsert(*_version(older, state="resolved")) is False
    stored = index.get(REF)
    assert stored is not None and stored.spec is not None
    assert stored.spec.state == "triggered"
    assert stored.resource_version == "100"


def test_identical_version_is_ignored() -> None:
    index = _index_holding("100")

    assert index.upsert(*_version("100", state="resolved")) is False
    stored = index.get(REF)
    assert stored is not None and stored.spec is not None
    assert stored.spec.state == "triggered"


def test_version_that_is_not_a_number_is_taken() -> None:
    index = _index_holding("100")

    assert index.upsert(*_version("", state="resolved")) is True
    assert index.upsert(*_version("abc", state="dismissed")) is True


def test_objects_are_kept_apart_by_namespace_and_name() -> None:
    index: Index[DataAlert] = Index()
    index.upsert(*_version("5"))
    index.upsert(*_version("3", name="other-alert"))
    index.upsert(*_version("1", namespace="another-team"))

    assert len(index) == 3
    assert sorted(alert.ref.name for alert in index.in_namespace(NAMESPACE)) == [
        "orders-column-removed-7f3a",
        "other-alert",
    ]
    assert [alert.ref for alert in index.in_namespace("another-team")] == [
        ObjectRef("another-team", "orders-column-removed-7f3a")
    ]


def test_removed_object_is_gone_and_removing_twice_is_harmless() -> None:
    index = _index_holding("5")

    index.remove(REF)
    index.remove(REF)

    assert index.get(REF) is None
    assert index.reference(REF) is None
    assert list(index) == []


def test_store_holds_one_index_per_kind() -> None:
    store = Store()
    store.alerts.upsert(*_version("5"))

    assert len(store.alerts) == 1
    assert len(store.rules) == 0
    assert len(store.destinations) == 0


def test_known_is_true_only_for_a_live_entry_at_this_or_a_newer_version() -> None:
    index: Index[DataAlert] = Index()
    alert, body = _version("7")
    assert index.upsert(alert, body, live=False)
    assert not index.known(REF, "7"), "seen only in the startup listing: kopf's event must still count"
    assert index.upsert(alert, body)
    assert index.known(REF, "7") and index.known(REF, "6")
    assert not index.known(REF, "8")
    assert not index.known(REF, "")


def _settled(resource_version: str, *deliveries: dict[str, Any], **spec: Any) -> tuple[DataAlert, dict[str, Any]]:
    """A version whose status is Ready at its generation, with these deliveries."""
    ready = {"type": "Ready", "status": "True"}
    status = {"observedGeneration": 1, "conditions": [ready], "deliveries": list(deliveries)}
    return _version(resource_version, status=status, **spec)


OPEN = {"destination": "incidentio", "state": "Open", "attempts": 1}
CLOSED = {"destination": "incidentio", "state": "Closed", "attempts": 1}


def test_the_alert_index_keeps_the_alerts_holding_incidents_or_unsettled_apart() -> None:
    alerts = AlertIndex()
    alerts.upsert(*_version("1", name="new-alert"))  # no status yet: unsettled, holding nothing
    alerts.upsert(*_settled("2", OPEN))  # settled, holding an incident
    alerts.upsert(*_settled("3", CLOSED, name="quiet-alert"))  # settled, holding nothing

    assert [e.model.ref.name for e in alerts.holding_entries()] == [REF.name]
    assert [e.model.ref.name for e in alerts.unsettled_entries()] == ["new-alert"]
    assert len(alerts) == 3


def test_the_alert_index_follows_each_new_version_and_ignores_stale_ones() -> None:
    alerts = AlertIndex()
    assert alerts.upsert(*_settled("5", OPEN))
    assert not alerts.upsert(*_settled("4", CLOSED)), "a stale version changes nothing"
    assert [e.model.ref for e in alerts.holding_entries()] == [REF]

    assert alerts.upsert(*_settled("6", CLOSED))
    assert list(alerts.holding_entries()) == [] and list(alerts.unsettled_entries()) == []
    assert alerts.upsert(*_version("7", status={"deliveries": [{"destination": "incidentio", "state": "Pending"}]}))
    assert [e.model.ref for e in alerts.unsettled_entries()] == [REF]
    assert list(alerts.holding_entries()) == [], "a create not yet sent holds nothing"

    alerts.remove(REF)
    assert list(alerts.holding_entries()) == [] and list(alerts.unsettled_entries()) == []


def test_the_alert_index_may_be_changed_while_its_sets_are_walked() -> None:
    alerts = AlertIndex()
    for n in range(3):
        alerts.upsert(*_settled(str(n + 1), OPEN, name=f"alert-{n}"))
    for entry in alerts.holding_entries():
        alerts.upsert(*_settled("9", CLOSED, name=entry.model.ref.name))
    assert list(alerts.holding_entries()) == []


def _matching(resource_version: str, *rules: str, **spec: Any) -> tuple[DataAlert, dict[str, Any]]:
    return _version(resource_version, status={"matchedRules": list(rules)}, **spec)


def test_the_alert_index_counts_each_rules_matches_as_alerts_come_change_and_go() -> None:
    alerts = AlertIndex()
    schema, fresh, other = (ObjectRef(NAMESPACE, n) for n in ("schema-changes", "freshness", "other"))
    alerts.upsert(*_matching("1", "schema-changes", "freshness", name="a"))
    alerts.upsert(*_matching("2", "schema-changes", name="b"))
    alerts.upsert(*_matching("3", "schema-changes", name="c", namespace="another-team"))
    assert (alerts.matching(schema), alerts.matching(fresh), alerts.matching(other)) == (2, 1, 0)
    assert alerts.matching(ObjectRef("another-team", "schema-changes")) == 1

    assert not alerts.upsert(*_matching("1", "other", name="b")), "stale: counts unchanged"
    alerts.upsert(*_matching("5", "freshness", "freshness", name="b"))  # named twice, counted once
    assert (alerts.matching(schema), alerts.matching(fresh)) == (1, 2)
    alerts.remove(ObjectRef(NAMESPACE, "a"))
    alerts.remove(ObjectRef(NAMESPACE, "a"))
    assert (alerts.matching(schema), alerts.matching(fresh)) == (0, 1)
    assert alerts.matches == {ObjectRef(NAMESPACE, "freshness"): 1, ObjectRef("another-team", "schema-changes"): 1}


def test_the_alert_index_follows_what_it_stores_when_a_stale_version_only_makes_it_live() -> None:
    alerts = AlertIndex()
    assert alerts.upsert(*_settled("10", OPEN), live=False)
    closed = _version("9", status={"matchedRules": ["other"], "deliveries": [CLOSED]})
    assert alerts.upsert(*closed), "seen live now, at a version older than the one held"
    stored = alerts.get(REF)
    assert stored is not None and stored.resource_version == "10" and alerts.entries[REF].live
    assert [e.model.ref for e in alerts.holding_entries()] == [REF], "what is stored still holds its incident"
    assert alerts.matches == {}, "the stored version names no rule"
    alerts.remove(REF)
    assert list(alerts.holding_entries()) == [] and alerts.matches == {}


def _walked(alerts: AlertIndex) -> tuple[set[ObjectRef], set[ObjectRef], dict[ObjectRef, int]]:
    """What the index's sets and counts must say, from a walk over every entry (as the operator once did)."""
    matches: dict[ObjectRef, int] = {}
    for ref, entry in alerts.entries.items():
        for name in set(entry.model.matched_rules):
            rule = ObjectRef(ref.namespace, name)
            matches[rule] = matches.get(rule, 0) + 1
    holding = {ref for ref, entry in alerts.entries.items() if entry.model.holding}
    unsettled = {ref for ref, entry in alerts.entries.items() if entry.model.unsettled}
    return holding, unsettled, matches


@pytest.mark.parametrize("seed", range(5))
def test_the_alert_index_always_says_what_a_walk_over_every_alert_says(seed: int) -> None:
    chance = random.Random(seed)
    alerts = AlertIndex()
    for _ in range(300):
        ref = ObjectRef(chance.choice([NAMESPACE, "another-team"]), f"alert-{chance.randrange(6)}")
        if chance.random() < 0.15:
            alerts.remove(ref)
        else:
            state = chance.choice(["Open", "Closed", "Pending", None])
            status: dict[str, Any] = {"matchedRules": [chance.choice("abc") for _ in range(chance.randrange(3))]}
            if chance.random() < 0.6:
                status.update(observedGeneration=1, conditions=[{"type": "Ready", "status": "True"}])
            if state is not None:
                status["deliveries"] = [{"destination": "incidentio", "state": state, "attempts": 1}]
            version = str(chance.randrange(1, 30))  # stale, equal and newer versions all come
            body = alert_body(ref.name, namespace=ref.namespace, status=status)
            body["metadata"]["resourceVersion"] = version
            alerts.upsert(DataAlert.from_body(body), body, live=chance.random() < 0.8)
        assert (set(alerts.holding), set(alerts.unsettled), alerts.matches) == _walked(alerts)
