"""Pure routing: which rules match an alert, and which destinations get one delivery each."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from fnmatch import fnmatchcase

from incidentio_operator.api import AlertRule, AlertRuleSpec, DataAlertSpec, LabelSelector, ObjectRef
from incidentio_operator.api.changes import class_matches
from incidentio_operator.api.rule import IncludeExclude


@dataclass(frozen=True)
class Route:
    """One destination and every rule that sends the alert there."""

    destination: ObjectRef
    rules: tuple[str, ...]


@dataclass(frozen=True)
class RefusedReference:
    rule: str
    destination: ObjectRef
    reason: str


@dataclass(frozen=True)
class Routing:
    matched_rules: tuple[str, ...]
    routes: tuple[Route, ...]
    refused: tuple[RefusedReference, ...] = ()


def selector_matches(selector: LabelSelector, labels: Mapping[str, str]) -> bool:
    if any(labels.get(key) != value for key, value in selector.match_labels.items()):
        return False
    for requirement in selector.match_expressions:
        present = requirement.key in labels
        value = labels.get(requirement.key)
        if requirement.operator == "In" and (not present or value not in requirement.values):
            return False
        if requirement.operator == "NotIn" and present and value in requirement.values:
            return False
        if requirement.operator == "Exists" and not present:
            return False
        if requirement.operator == "DoesNotExist" and present:
            return False
    return True


def _any_glob(value: str, patterns: Iterable[str]) -> bool:
    return any(fnmatchcase(value, pattern) for pattern in patterns)


def _included(value: str, filters: IncludeExclude) -> bool:
    if filters.include and not _any_glob(value, filters.include):
        return False
    return not _any_glob(value, filters.exclude)


def rule_matches(rule: AlertRuleSpec, alert: DataAlertSpec, labels: Mapping[str, str]) -> bool:
    """Every field that is set must match (AND across fields, OR within a list)."""
    if rule.suspend:
        return False
    if rule.event_types and alert.event_type not in rule.event_types:
        return False
    if rule.severities and alert.severity not in rule.severities:
        return False
    scope = rule.scope
    if scope.environments and not _any_glob(alert.asset.environment, scope.environments):
        return False
    if scope.databases and not _any_glob(alert.asset.database, scope.databases):
        return False
    if not _included(alert.asset.schema, scope.schemas) or not _included(alert.asset.table, scope.tables):
        return False
    if not selector_matches(scope.asset_selector, labels):
        return False
    if not class_matches(rule.change_class, (change.type for change in alert.changes)):
        return False
    return not rule.change_types or any(change.type in rule.change_types for change in alert.changes)


def route(
    alert: DataAlertSpec,
    alert_ref: ObjectRef,
    labels: Mapping[str, str],
    rules: Iterable[AlertRule],
    *,
    allow_cross_namespace: bool = False,
) -> Routing:
    """Rules of the alert's own namespace that match it, grouped into one route per destination."""
    matched: list[str] = []
    by_destination: dict[ObjectRef, list[str]] = {}
    refused: list[RefusedReference] = []
    for rule in sorted(rules, key=lambda r: r.ref.name):
        if rule.ref.namespace != alert_ref.namespace or rule.spec is None:
            continue
        if not rule_matches(rule.spec, alert, labels):
            continue
        matched.append(rule.ref.name)
        for reference in rule.spec.destinations:
            destination = reference.resolve(rule.ref.namespace)
            if destination.namespace != rule.ref.namespace and not allow_cross_namespace:
                refused.append(
                    RefusedReference(rule.ref.name, destination, "cross-namespace destinations are disabled")
                )
                continue
            names = by_destination.setdefault(destination, [])
            if rule.ref.name not in names:
                names.append(rule.ref.name)
    routes = tuple(Route(destination, tuple(names)) for destination, names in sorted(by_destination.items()))
    return Routing(tuple(matched), routes, tuple(refused))
