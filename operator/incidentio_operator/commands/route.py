"""``incidentio-operator route``: which rules and destinations an alert would reach, offline, nothing sent."""

from __future__ import annotations

import argparse
import datetime
import json
import pathlib
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from typing import Any

from incidentio_operator.api import (
    CLOSING_STATES,
    GROUP,
    AlertRule,
    AlertRuleSpec,
    DataAlert,
    DataAlertSpec,
    Destination,
    LabelSelector,
    ObjectRef,
    parse_time,
)
from incidentio_operator.api.changes import class_matches
from incidentio_operator.api.destination import IncidentTemplate
from incidentio_operator.api.rule import IncludeExclude
from incidentio_operator.commands.route_events import event_lines, would_send
from incidentio_operator.commands.route_json import render_json
from incidentio_operator.decisions.payloads import incident_name, incident_summary
from incidentio_operator.decisions.routing import Routing, route, selector_matches
from incidentio_operator.incidentio import AlertEvent
from incidentio_operator.offline.holds import held_back, unknowable
from incidentio_operator.offline.manifests import ManifestSet, load, load_text
from incidentio_operator.offline.schema import validator_for


class RouteError(Exception):
    """The question cannot be answered: an unreadable alert, an invalid one, or an unreadable folder."""


def _listed(values: Sequence[str]) -> str:
    return "[" + ", ".join(values) + "]"


def _glob_mismatch(field_path: str, what: str, value: str, patterns: Sequence[str]) -> str | None:
    if any(fnmatchcase(value, pattern) for pattern in patterns):
        return None
    return f'{field_path}: {what} "{value}" matches none of {_listed(patterns)}'


def _filter_mismatch(field_path: str, what: str, value: str, filters: IncludeExclude) -> str | None:
    if filters.include:
        mismatch = _glob_mismatch(f"{field_path}.include", what, value, filters.include)
        if mismatch:
            return mismatch
    for pattern in filters.exclude:
        if fnmatchcase(value, pattern):
            return f'{field_path}.exclude: {what} "{value}" is excluded by "{pattern}"'
    return None


def _selector_mismatch(selector: LabelSelector, labels: Mapping[str, str]) -> str | None:
    field_path = "spec.scope.assetSelector"
    # One requirement at a time through routing's own matcher, so the explanation cannot disagree with it.
    for key, value in selector.match_labels.items():
        if not selector_matches(LabelSelector(match_labels={key: value}), labels):
            actual = f'"{labels[key]}"' if key in labels else "not set"
            return f'{field_path}.matchLabels.{key}: wants "{value}", the alert\'s label is {actual}'
    for index, requirement in enumerate(selector.match_expressions):
        if not selector_matches(LabelSelector(match_expressions=(requirement,)), labels):
            actual = f'"{labels[requirement.key]}"' if requirement.key in labels else "not set"
            wanted = f"{requirement.key} {requirement.operator}"
            if requirement.values:
                wanted += f" {_listed(requirement.values)}"
            return f"{field_path}.matchExpressions[{index}]: wants {wanted}, the alert's label is {actual}"
    return None


def explain_mismatch(rule: AlertRuleSpec, alert: DataAlertSpec, labels: Mapping[str, str]) -> str | None:
    """The first field of `rule` that `alert` does not match, as ``field: why``; None when the rule matches."""
    if rule.suspend:
        return "spec.suspend: the rule is suspended"
    if rule.event_types and alert.event_type not in rule.event_types:
        return f'spec.eventTypes: event type "{alert.event_type}" is not in {_listed(rule.event_types)}'
    if rule.severities and alert.severity not in rule.severities:
        return f'spec.severities: severity "{alert.severity}" is not in {_listed(rule.severities)}'
    scope, asset = rule.scope, alert.asset
    checks = (
        _glob_mismatch("spec.scope.environments", "environment", asset.environment, scope.environments)
        if scope.environments
        else None,
        _glob_mismatch("spec.scope.databases", "database", asset.database, scope.databases)
        if scope.databases
        else None,
        _filter_mismatch("spec.scope.schemas", "schema", asset.schema, scope.schemas),
        _filter_mismatch("spec.scope.tables", "table", asset.table, scope.tables),
        _selector_mismatch(scope.asset_selector, labels),
    )
    for mismatch in checks:
        if mismatch:
            return mismatch
    if not class_matches(rule.change_class, (change.type for change in alert.changes)):
        found = _listed([change.type for change in alert.changes]) if alert.changes else "none"
        return f"spec.conditions.changeClass: the alert's changes ({found}) are not {rule.change_class}"
    if rule.change_types and not any(change.type in rule.change_types for change in alert.changes):
        found = _listed([change.type for change in alert.changes]) if alert.changes else "none"
        return f"spec.conditions.changeTypes: no change of type {_listed(rule.change_types)} (the alert's: {found})"
    return None


@dataclass(frozen=True)
class Incident:
    name: str
    summary: str
    severity: str
    severity_from: str
    mode: str
    visibility: str


@dataclass(frozen=True)
class Delivery:
    """One destination the alert reaches, the rules that name it, and the incident it would get."""

    destination: ObjectRef
    rules: tuple[str, ...]
    incident: Incident
    declared: bool
    sent: bool
    note: str = ""
    # Delivery mode AlertEvent: the event the alert source would get instead of an incident, and its source.
    alert_event: AlertEvent | None = None
    alert_source: str = ""


@dataclass
class RouteReport:
    alert: DataAlert
    alert_spec: DataAlertSpec
    routing: Routing
    deliveries: list[Delivery] = field(default_factory=list)
    mismatches: dict[str, str] = field(default_factory=dict)
    skipped_rules: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def reached(self) -> list[Delivery]:
        return [delivery for delivery in self.deliveries if delivery.sent]


def _incident(template: IncidentTemplate, alert: DataAlertSpec, alert_ref: ObjectRef, rules: Sequence[str]) -> Incident:
    severity_map = template.severity
    if severity_map.by_alert_severity.get(alert.severity):
        severity, source = severity_map.by_alert_severity[alert.severity], f"map.{alert.severity}"
    elif severity_map.default:
        severity, source = severity_map.default, "default"
    else:
        severity, source = "", "none"
    return Incident(
        name=incident_name(template.name_prefix, alert.title),
        summary=incident_summary(alert, alert_ref, rules),
        severity=severity,
        severity_from=source,
        mode=template.mode,
        visibility=template.visibility,
    )


def route_alert(
    alert: DataAlert,
    manifests: ManifestSet,
    *,
    allow_cross_namespace: bool = False,
    at: datetime.datetime | None = None,
) -> RouteReport:
    """What the operator would do with `alert` given the manifests (and their noise control at `at`)."""
    if alert.spec is None:
        raise RouteError(str(alert.spec_error))
    spec = alert.spec
    rules = [AlertRule.from_body(manifest.body) for manifest in manifests.of_kind("AlertRule", GROUP)]
    destinations = {
        destination.ref: destination
        for destination in (
            Destination.from_body(manifest.body) for manifest in manifests.of_kind("IncidentIoDestination", GROUP)
        )
    }
    routing = route(spec, alert.ref, alert.labels, rules, allow_cross_namespace=allow_cross_namespace)
    report = RouteReport(alert, spec, routing)
    in_namespace = sorted((rule for rule in rules if rule.ref.namespace == alert.ref.namespace), key=lambda r: r.ref)
    for rule in in_namespace:
        if rule.spec is None:
            report.skipped_rules[rule.ref.name] = str(rule.spec_error)
        elif rule.ref.name not in routing.matched_rules:
            report.mismatches[rule.ref.name] = explain_mismatch(rule.spec, spec, alert.labels) or "does not match"
    if not in_namespace:
        report.notes.append(f"no AlertRule in namespace {alert.ref.namespace} in the given folders")
    if spec.state in CLOSING_STATES:
        report.notes.append(
            f"the alert's state is {spec.state}: the operator closes its open incidents instead of opening any"
        )
    for entry in routing.routes:
        destination = destinations.get(entry.destination)
        if destination is None:
            report.deliveries.append(
                Delivery(
                    entry.destination,
                    entry.rules,
                    _incident(IncidentTemplate(), spec, alert.ref, entry.rules),
                    declared=False,
                    sent=True,
                    note="not declared in the given folders: shown with the default incident settings",
                )
            )
        elif destination.spec is None:
            report.deliveries.append(
                Delivery(
                    entry.destination,
                    entry.rules,
                    _incident(IncidentTemplate(), spec, alert.ref, entry.rules),
                    declared=True,
                    sent=False,
                    note=f"its spec is invalid, so nothing would be sent: {destination.spec_error}",
                )
            )
        else:
            suspended, source = destination.spec.suspend, destination.spec.alert_source
            event = would_send(alert, spec, destination.spec, entry.rules) if destination.spec.alert_events else None
            report.deliveries.append(
                Delivery(
                    entry.destination,
                    entry.rules,
                    _incident(destination.spec.incident, spec, alert.ref, entry.rules),
                    declared=True,
                    sent=not suspended,
                    note="suspended (spec.suspend: true): nothing would be sent" if suspended else "",
                    alert_event=event,
                    alert_source=source.config_id if event is not None and source is not None else "",
                )
            )
    if at is not None:
        report.notes += unknowable(routing, {rule.ref.name: rule for rule in in_namespace})
        held = held_back(alert, routing, rules, manifests, at)
        report.deliveries = [
            replace(d, sent=d.sent and d.destination not in held, note=held.get(d.destination, d.note))
            for d in report.deliveries
        ]
    return report


def load_alert(text: str, source: str, default_namespace: str) -> DataAlert:
    """The one DataAlert in `text`, defaulted and checked as the API server would; RouteError otherwise."""
    loaded = load_text(text, source, default_namespace)
    if loaded.problems:
        raise RouteError("; ".join(problem.message for problem in loaded.problems))
    alerts = loaded.of_kind("DataAlert", GROUP)
    if len(alerts) != 1:
        raise RouteError(f"expected exactly one DataAlert of {GROUP}, found {len(alerts)}")
    manifest = alerts[0]
    validator = validator_for(manifest.api_version, manifest.kind)
    if validator is None:
        raise RouteError(f"no CRD of {GROUP} serves DataAlert at {manifest.api_version}")
    body = validator.apply_defaults(manifest.body)
    problems = validator.validate(body)
    if problems:
        raise RouteError("the API server would refuse this DataAlert:\n" + "\n".join(f"  {p}" for p in problems))
    alert = DataAlert.from_body(body)
    if alert.spec_error is not None:
        raise RouteError(f"the operator cannot act on this DataAlert: {alert.spec_error}")
    return alert


def render_text(report: RouteReport) -> str:
    spec, ref = report.alert_spec, report.alert.ref
    lines = [f"DataAlert {ref}: {spec.event_type}, severity {spec.severity}, state {spec.state}"]
    lines += [f"note: {note}" for note in report.notes]
    for rule, error in report.skipped_rules.items():
        lines.append(f"rule {rule} is ignored: its spec is invalid: {error}")
    if report.routing.matched_rules:
        lines.append(f"Matching rules: {', '.join(report.routing.matched_rules)}")
    for refused in report.routing.refused:
        lines.append(f"refused: rule {refused.rule} names {refused.destination}: {refused.reason}")
    for delivery in report.deliveries:
        incident = delivery.incident
        lines += ["", f"IncidentIoDestination {delivery.destination} (rules: {', '.join(delivery.rules)})"]
        if delivery.note:
            lines.append(f"  note:     {delivery.note}")
        if delivery.alert_event is not None:
            lines += event_lines(delivery.alert_event, delivery.alert_source)
            continue
        lines.append("  delivery: Incident (POST /v2/incidents)")
        severity = (
            f"{incident.severity} (spec.incident.severity.{incident.severity_from})"
            if incident.severity
            else "not set (incident.io's default)"
        )
        lines += [
            f"  name:     {incident.name}",
            f"  severity: {severity}",
            f"  mode:     {incident.mode}, visibility {incident.visibility}",
            "  summary:",
        ]
        lines += [f"    {line}" if line else "" for line in incident.summary.splitlines()]
    if report.mismatches:
        lines.append("")
        lines.append("Rules that do not match:" if report.routing.matched_rules else "No rule matches. Why:")
        lines += [f"  {rule}: {reason}" for rule, reason in report.mismatches.items()]
    reached = len(report.reached)
    lines.append("")
    if reached:
        noun = "destination" if reached == 1 else "destinations"
        what = "an incident or alert event" if any(d.alert_event for d in report.reached) else "an incident"
        lines.append(f"{reached} {noun} would get {what}. Nothing was sent.")
    else:
        lines.append("No destination would get an incident. Nothing was sent.")
    return "\n".join(lines)


def register(subparsers: Any) -> None:
    parser: argparse.ArgumentParser = subparsers.add_parser(
        "route",
        help="show which rules and destinations an alert would reach (nothing is sent)",
        description=(
            "Route a DataAlert through the AlertRules and IncidentIoDestinations of the given folders, offline, "
            "and print the incidents the operator would create. Exit 0 when at least one destination would get "
            "an incident, 1 when none, 2 on errors."
        ),
    )
    parser.add_argument("alert", metavar="ALERT.yaml", help="the DataAlert manifest, or - for stdin")
    parser.add_argument(
        "--dir",
        action="append",
        required=True,
        metavar="DIR",
        help="folder (or file) with the rules and destinations (repeatable)",
    )
    parser.add_argument(
        "--default-namespace",
        default="default",
        metavar="NS",
        help="namespace of objects that name none (default: %(default)s)",
    )
    parser.add_argument(
        "--allow-cross-namespace",
        action="store_true",
        help="route as an operator running with --allow-cross-namespace does",
    )
    parser.add_argument(
        "--at",
        metavar="TIME",
        help="evaluate schedules, blackouts and the snooze at this RFC 3339 time (such as 2026-12-05T23:00:00Z) "
        "and say what would be suppressed or deferred, and why",
    )
    parser.add_argument("--output", "-o", choices=("text", "json"), default="text", help="output format")
    parser.set_defaults(func=main)


def main(args: argparse.Namespace) -> int:
    try:
        missing = [path for path in args.dir if not pathlib.Path(path).exists()]
        if missing:
            raise RouteError(f"no such file or folder: {', '.join(missing)}")
        manifests = load(args.dir, default_namespace=args.default_namespace)
        if manifests.problems:
            # A broken rules file would make the answer wrong rather than incomplete.
            raise RouteError("; ".join(f"{problem.source}: {problem.message}" for problem in manifests.problems))
        if args.alert == "-":
            text, source = sys.stdin.read(), "<stdin>"
        else:
            try:
                text, source = pathlib.Path(args.alert).read_text(encoding="utf-8"), args.alert
            except (OSError, UnicodeDecodeError) as error:
                raise RouteError(f"cannot read {args.alert}: {error}") from None
        alert = load_alert(text, source, args.default_namespace)
        at = parse_time(args.at) if args.at else None
        if args.at and at is None:
            raise RouteError(f"--at {args.at!r} is not an RFC 3339 time such as 2026-12-05T23:00:00Z")
        report = route_alert(alert, manifests, allow_cross_namespace=args.allow_cross_namespace, at=at)
    except RouteError as error:
        print(f"incidentio-operator route: {error}", file=sys.stderr)
        return 2
    if args.output == "json":
        json.dump(render_json(report), sys.stdout, indent=2)
        print()
    else:
        print(render_text(report))
    return 0 if report.reached else 1
