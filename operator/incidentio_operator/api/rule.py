"""The AlertRule kind: which alerts go to which destinations."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentio_operator.api.changes import CHANGE_CLASSES
from incidentio_operator.api.common import (
    ObjectRef,
    SpecError,
    boolean,
    choice,
    mapping,
    parse_duration,
    string,
    string_list,
)
from incidentio_operator.api.schedule import Schedule

SELECTOR_OPERATORS = ("In", "NotIn", "Exists", "DoesNotExist")
# The operator remembers incidents for a little over a week; a longer cooldown could not be honoured.
MAX_COOLDOWN = datetime.timedelta(days=7)


@dataclass(frozen=True)
class SelectorRequirement:
    key: str
    operator: str
    values: tuple[str, ...] = ()


@dataclass(frozen=True)
class LabelSelector:
    match_labels: Mapping[str, str] = field(default_factory=dict)
    match_expressions: tuple[SelectorRequirement, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.match_labels and not self.match_expressions

    @classmethod
    def parse(cls, value: Any, path: str) -> LabelSelector:
        selector = mapping(value, path)
        labels = mapping(selector.get("matchLabels"), f"{path}.matchLabels")
        expressions = []
        for index, raw in enumerate(selector.get("matchExpressions") or []):
            where = f"{path}.matchExpressions[{index}]"
            item = mapping(raw, where)
            operator = string(item.get("operator"), f"{where}.operator")
            if operator not in SELECTOR_OPERATORS:
                raise SpecError(f"{where}.operator", f"must be one of {', '.join(SELECTOR_OPERATORS)}")
            expressions.append(
                SelectorRequirement(
                    key=string(item.get("key"), f"{where}.key"),
                    operator=operator,
                    values=string_list(item.get("values"), f"{where}.values"),
                )
            )
        return cls({str(k): str(v) for k, v in labels.items()}, tuple(expressions))


@dataclass(frozen=True)
class IncludeExclude:
    include: tuple[str, ...] = ()
    exclude: tuple[str, ...] = ()

    @classmethod
    def parse(cls, value: Any, path: str) -> IncludeExclude:
        item = mapping(value, path)
        return cls(
            string_list(item.get("include"), f"{path}.include"),
            string_list(item.get("exclude"), f"{path}.exclude"),
        )


@dataclass(frozen=True)
class Scope:
    environments: tuple[str, ...] = ()
    databases: tuple[str, ...] = ()
    schemas: IncludeExclude = field(default_factory=IncludeExclude)
    tables: IncludeExclude = field(default_factory=IncludeExclude)
    asset_selector: LabelSelector = field(default_factory=LabelSelector)


@dataclass(frozen=True)
class DestinationRef:
    name: str
    namespace: str = ""

    def resolve(self, rule_namespace: str) -> ObjectRef:
        return ObjectRef(self.namespace or rule_namespace, self.name)


@dataclass(frozen=True)
class AlertRuleSpec:
    destinations: tuple[DestinationRef, ...]
    event_types: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    scope: Scope = field(default_factory=Scope)
    change_types: tuple[str, ...] = ()
    suspend: bool = False
    # Noise control (DESIGN.md §9): which schema changes count, and when and how often incidents may open.
    change_class: str = "Any"
    schedule: Schedule | None = None
    cooldown: datetime.timedelta | None = None
    max_incidents_per_day: int | None = None

    @property
    def noise_controlled(self) -> bool:
        """The rule holds some alerts back by itself (a schedule, a cooldown or a daily cap)."""
        return self.schedule is not None or self.cooldown is not None or self.max_incidents_per_day is not None

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> AlertRuleSpec:
        destinations = []
        for index, raw in enumerate(spec.get("destinations") or []):
            item = mapping(raw, f"spec.destinations[{index}]")
            name = string(item.get("name"), f"spec.destinations[{index}].name")
            if not name:
                raise SpecError(f"spec.destinations[{index}].name", "name an IncidentIoDestination")
            destinations.append(
                DestinationRef(name, string(item.get("namespace"), f"spec.destinations[{index}].namespace"))
            )
        if not destinations:
            raise SpecError("spec.destinations", "a rule needs at least one destination")
        scope = mapping(spec.get("scope"), "spec.scope")
        conditions = mapping(spec.get("conditions"), "spec.conditions")
        return cls(
            destinations=tuple(destinations),
            event_types=string_list(spec.get("eventTypes"), "spec.eventTypes"),
            severities=string_list(spec.get("severities"), "spec.severities"),
            scope=Scope(
                environments=string_list(scope.get("environments"), "spec.scope.environments"),
                databases=string_list(scope.get("databases"), "spec.scope.databases"),
                schemas=IncludeExclude.parse(scope.get("schemas"), "spec.scope.schemas"),
                tables=IncludeExclude.parse(scope.get("tables"), "spec.scope.tables"),
                asset_selector=LabelSelector.parse(scope.get("assetSelector"), "spec.scope.assetSelector"),
            ),
            change_types=string_list(conditions.get("changeTypes"), "spec.conditions.changeTypes"),
            suspend=boolean(spec.get("suspend"), "spec.suspend", False),
            change_class=choice(conditions.get("changeClass"), "spec.conditions.changeClass", CHANGE_CLASSES, "Any"),
            schedule=Schedule.parse(mapping(spec["schedule"], "spec.schedule"), "spec.schedule")
            if spec.get("schedule") is not None
            else None,
            cooldown=_cooldown(spec.get("cooldown")),
            max_incidents_per_day=_daily_cap(spec.get("maxIncidentsPerDay")),
        )


def _cooldown(value: Any) -> datetime.timedelta | None:
    if value is None:
        return None
    try:
        cooldown = parse_duration(string(value, "spec.cooldown"))
    except ValueError:
        raise SpecError("spec.cooldown", "must be a duration such as 10m or 1h30m") from None
    if not datetime.timedelta(0) < cooldown <= MAX_COOLDOWN:
        raise SpecError("spec.cooldown", "must be longer than 0s and at most 168h (a week)")
    return cooldown


def _daily_cap(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise SpecError("spec.maxIncidentsPerDay", "must be a whole number of at least 1")
    return value


@dataclass(frozen=True)
class AlertRule:
    ref: ObjectRef
    generation: int
    spec: AlertRuleSpec | None
    spec_error: SpecError | None
    status: Mapping[str, Any]
    # Blackouts pick the rules they hold back by these (spec.ruleSelector).
    labels: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> AlertRule:
        meta = body.get("metadata") or {}
        spec: AlertRuleSpec | None = None
        error: SpecError | None = None
        try:
            spec = AlertRuleSpec.parse(body.get("spec") or {})
        except SpecError as exc:
            error = exc
        labels = {str(key): str(value) for key, value in (meta.get("labels") or {}).items()}
        return cls(ObjectRef.of(body), int(meta.get("generation") or 0), spec, error, body.get("status") or {}, labels)
