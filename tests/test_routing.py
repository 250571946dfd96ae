"""Routing: which rules match an alert, and one route per destination naming every rule that sends it there."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from incidentio_operator.api import AlertRule, DataAlert, DataAlertSpec, LabelSelector, ObjectRef
from incidentio_operator.api.rule import SelectorRequirement
from incidentio_operator.decisions.routing import (
    RefusedReference,
    Route,
    Routing,
    route,
    rule_matches,
    selector_matches,
)

from .factories import DESTINATION, NAMESPACE, alert_body, alert_spec, rule_body

ALERT_REF = ObjectRef(NAMESPACE, "orders-column-removed-7f3a")
LABELS = {"team": "payments", "tier": "gold"}


def _alert(**overrides: Any) -> DataAlertSpec:
    alert = DataAlert.from_body(alert_body(**overrides))
    assert alert.spec is not None, alert.spec_error
    return alert.spec


def _rule(name: str = "production-breaking-changes", **kwargs: Any) -> AlertRule:
    rule = AlertRule.from_body(rule_body(name, **kwargs))
    assert rule.spec is not None, rule.spec_error
    return rule


def _matches(rule_spec: Mapping[str, Any], labels: Mapping[str, str] = LABELS, **alert: Any) -> bool:
    rule = _rule(**rule_spec)
    assert rule.spec is not None
    return rule_matches(rule.spec, _alert(**alert), labels)


# --- rule_matches ------------------------------------------------------------------------------------------


def test_rule_with_only_destinations_matches_every_alert() -> None:
    assert _matches({})
    assert _matches({}, eventType="metric_anomaly", severity="info", changes=[], asset={})


def test_design_example_rule_matches_the_design_example_alert() -> None:
    rule = {
        "eventTypes": ["schema_change"],
        "severities": ["critical", "warning"],
        "scope": {
            "environments": ["production"],
            "databases": ["prod_*"],
            "schemas": {"include": ["*"], "exclude": ["tmp_*"]},
            "tables": {"include": ["*"], "exclude": ["*_staging"]},
            "assetSelector": {"matchLabels": {"team": "payments"}},
        },
        "conditions": {"changeTypes": ["column_removed", "column_type_changed"]},
    }

    assert _matches(rule)


@pytest.mark.parametrize(
    ("rule", "alert", "matches"),
    [
        ({"eventTypes": ["schema_change", "freshness_violation"]}, {}, True),
        ({"eventTypes": ["freshness_violation"]}, {}, False),
        ({"severities": ["warning", "critical"]}, {}, True),
        ({"severities": ["warning"]}, {"severity": "critical"}, False),
        ({"severities": ["info"]}, {"severity": "info"}, True),
    ],
    ids=["event-type-in-list", "event-type-not-in-list", "severity-in-list", "severity-not-in-list", "info"],
)
def test_event_types_and_severities_match_any_of_their_list(
    rule: dict[str, Any], alert: dict[str, Any], matches: bool
) -> None:
    assert _matches(rule, **alert) is matches


@pytest.mark.parametrize(
    ("scope", "asset", "matches"),
    [
        ({"environments": ["staging", "production"]}, {"environment": "production"}, True),
        ({"environments": ["staging"]}, {"environment": "production"}, False),
        ({"environments": ["production"]}, {}, False),
        ({"databases": ["prod_*"]}, {"database": "prod_db"}, True),
        ({"databases": ["prod_*"]}, {"database": "dev_db"}, False),
        ({"databases": ["PROD_*"]}, {"database": "prod_db"}, False),
        ({"databases": ["analytics", "prod_?b"]}, {"database": "prod_db"}, True),
        ({"schemas": {"include": ["sales", "finance"]}}, {"schema": "sales"}, True),
        ({"schemas": {"include": ["finance"]}}, {"schema": "sales"}, False),
        ({"schemas": {"exclude": ["tmp_*"]}}, {"schema": "tmp_sales"}, False),
        ({"schemas": {"exclude": ["tmp_*"]}}, {"schema": "sales"}, True),
        ({"schemas": {"include": ["*"], "exclude": ["sales"]}}, {"schema": "sales"}, False),
        ({"tables": {"include": ["ord*"]}}, {"table": "orders"}, True),
        ({"tables": {"exclude": ["*_staging"]}}, {"table": "orders_staging"}, False),
        ({"tables": {"include": ["*"], "exclude": ["*_staging"]}}, {"table": "orders"}, True),
    ],
    ids=[
        "environment-listed",
        "environment-not-listed",
        "environment-missing-on-alert",
        "database-glob",
        "database-glob-miss",
        "database-glob-is-case-sensitive",
        "database-any-of",
        "schema-included",
        "schema-not-included",
        "schema-excluded",
        "schema-not-excluded",
        "exclude-beats-include",
        "table-included",
        "table-excluded",
        "table-include-all-but-excluded",
    ],
)
def test_scope_fields_that_are_set_must_match_the_asset(
    scope: dict[str, Any], asset: dict[str, str], matches: bool
) -> None:
    assert _matches({"scope": scope}, asset=asset) is matches


def test_every_set_field_must_match() -> None:
    rule = {"eventTypes": ["schema_change"], "severities": ["critical"], "scope": {"environments": ["staging"]}}

    assert not _matches(rule), "event type and severity match but the environment does not"


@pytest.mark.parametrize(
    ("change_types", "changes", "matches"),
    [
        (["column_removed", "column_type_changed"], [{"type": "column_removed", "column": "customer_id"}], True),
        (["column_type_changed"], [{"type": "column_removed"}, {"type": "column_type_changed"}], True),
        (["column_type_changed"], [{"type": "column_removed", "column": "customer_id"}], False),
        (["column_removed"], [], False),
    ],
    ids=["listed-change", "any-change-of-several", "unlisted-change", "no-changes"],
)
def test_change_types_match_any_change_of_the_alert(
    change_types: list[str], changes: list[dict[str, str]], matches: bool
) -> None:
    assert _matches({"conditions": {"changeTypes": change_types}}, changes=changes) is matches


def test_suspended_rule_matches_nothing() -> None:
    assert not _matches({"suspend": True})


def test_asset_selector_matches_the_alerts_labels() -> None:
    assert _matches({"scope": {"assetSelector": {"matchLabels": {"team": "payments"}}}})
    assert not _matches({"scope": {"assetSelector": {"matchLabels": {"team": "growth"}}}})
    assert not _matches({"scope": {"assetSelector": {"matchLabels": {"team": "payments"}}}}, labels={})


# --- selector_matches --------------------------------------------------------------------------------------


def _selector(labels: Mapping[str, str] | None = None, *expressions: tuple[str, str, tuple[str, ...]]) -> LabelSelector:
    return LabelSelector(dict(labels or {}), tuple(SelectorRequirement(k, op, v) for k, op, v in expressions))


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        (_selector(), True),
        (_selector({"team": "payments"}), True),
        (_selector({"team": "payments", "tier": "gold"}), True),
        (_selector({"team": "payments", "tier": "silver"}), False),
        (_selector({"owner": "payments"}), False),
        (_selector(None, ("tier", "In", ("gold", "silver"))), True),
        (_selector(None, ("tier", "In", ("silver",))), False),
        (_selector(None, ("region", "In", ("eu",))), False),
        (_selector(None, ("tier", "NotIn", ("silver",))), True),
        (_selector(None, ("tier", "NotIn", ("gold",))), False),
        (_selector(None, ("region", "NotIn", ("eu",))), True),
        (_selector(None, ("tier", "Exists", ())), True),
        (_selector(None, ("region", "Exists", ())), False),
        (_selector(None, ("region", "DoesNotExist", ())), True),
        (_selector(None, ("tier", "DoesNotExist", ())), False),
        (_selector({"team": "payments"}, ("tier", "In", ("gold",)), ("region", "DoesNotExist", ())), True),
        (_selector({"team": "payments"}, ("tier", "In", ("gold",)), ("team", "DoesNotExist", ())), False),
    ],
    ids=[
        "empty-matches-all",
        "one-label",
        "all-labels",
        "one-label-differs",
        "label-missing",
        "in",
        "in-miss",
        "in-missing-key",
        "notin",
        "notin-miss",
        "notin-missing-key",
        "exists",
        "exists-missing",
        "does-not-exist",
        "does-not-exist-present",
        "labels-and-expressions",
        "one-expression-fails",
    ],
)
def test_selector_follows_kubernetes_label_selector_semantics(selector: LabelSelector, matches: bool) -> None:
    assert selector_matches(selector, LABELS) is matches


# --- route -------------------------------------------------------------------------------------------------


def _route(rules: list[AlertRule], *, allow_cross_namespace: bool = False, **alert: Any) -> Routing:
    return route(_alert(**alert), ALERT_REF, LABELS, rules, allow_cross_namespace=allow_cross_namespace)


def test_no_rules_no_routes() -> None:
    assert _route([]) == Routing(matched_rules=(), routes=(), refused=())


def test_matching_rule_routes_the_alert_to_its_destination() -> None:
    routing = _route([_rule()])

    assert routing.matched_rules == ("production-breaking-changes",)
    assert routing.routes == (Route(ObjectRef(NAMESPACE, DESTINATION), ("production-breaking-changes",)),)
    assert routing.refused == ()


def test_several_rules_naming_one_destination_give_one_route_listing_every_rule() -> None:
    rules = [_rule("schema-changes"), _rule("critical-alerts"), _rule("payments-team")]

    routing = _route(rules)

    assert routing.routes == (
        Route(ObjectRef(NAMESPACE, DESTINATION), ("critical-alerts", "payments-team", "schema-changes")),
    )
    assert routing.matched_rules == ("critical-alerts", "payments-team", "schema-changes")


def test_one_rule_naming_several_destinations_gives_a_route_to_each() -> None:
    routing = _route([_rule(destinations=["pager", "data-team", "pager"])])

    assert routing.routes == (
        Route(ObjectRef(NAMESPACE, "data-team"), ("production-breaking-changes",)),
        Route(ObjectRef(NAMESPACE, "pager"), ("production-breaking-changes",)),
    )


def test_rules_that_do_not_match_are_neither_matched_nor_routed() -> None:
    rules = [_rule("freshness", eventTypes=["freshness_violation"], destinations=["pager"]), _rule("all")]

    routing = _route(rules)

    assert routing.matched_rules == ("all",)
    assert [r.destination.name for r in routing.routes] == [DESTINATION]


def test_rules_of_other_namespaces_are_ignored() -> None:
    routing = _route([_rule(namespace="another-team")])

    assert routing == Routing((), (), ())


def test_rules_with_an_invalid_spec_are_ignored() -> None:
    broken = AlertRule.from_body(rule_body("broken", destinations=[]))
    assert broken.spec is None

    assert _route([broken, _rule("all")]).matched_rules == ("all",)


def test_cross_namespace_destination_is_refused_by_default() -> None:
    rule = _rule(destinations=[{"name": "shared", "namespace": "platform"}, DESTINATION])

    routing = _route([rule])

    assert routing.refused == (
        RefusedReference(
            "production-breaking-changes", ObjectRef("platform", "shared"), "cross-namespace destinations are disabled"
        ),
    )
    assert [r.destination for r in routing.routes] == [ObjectRef(NAMESPACE, DESTINATION)]


def test_cross_namespace_destination_is_routed_when_allowed() -> None:
    rule = _rule(destinations=[{"name": "shared", "namespace": "platform"}])

    routing = _route([rule], allow_cross_namespace=True)

    assert routing.refused == ()
    assert routing.routes == (Route(ObjectRef("platform", "shared"), ("production-breaking-changes",)),)


def test_destination_named_with_the_rules_own_namespace_is_not_cross_namespace() -> None:
    routing = _route([_rule(destinations=[{"name": DESTINATION, "namespace": NAMESPACE}])])

    assert routing.refused == ()
    assert routing.routes == (Route(ObjectRef(NAMESPACE, DESTINATION), ("production-breaking-changes",)),)


def test_routing_does_not_depend_on_the_order_rules_arrive_in() -> None:
    rules = [_rule("b", destinations=["pager", DESTINATION]), _rule("a", destinations=[DESTINATION]), _rule("c")]

    assert _route(rules) == _route(list(reversed(rules)))


def test_alert_spec_used_for_routing_is_the_one_given() -> None:
    spec = DataAlertSpec.parse(alert_spec(eventType="data_quality", changes=[]))
    rules = [_rule("quality", eventTypes=["data_quality"]), _rule("schema", eventTypes=["schema_change"])]

    assert route(spec, ALERT_REF, {}, rules).matched_rules == ("quality",)
