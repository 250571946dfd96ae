"""The IncidentIoDestination kind: an incident.io account to send to, and how its incidents look."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentio_operator.api import alertsource
from incidentio_operator.api.alertsource import ALERT_EVENT_MODE, INCIDENT_MODE, AlertSourceRef, HeartbeatSpec
from incidentio_operator.api.common import (
    ObjectRef,
    SpecError,
    boolean,
    choice,
    condition_of,
    mapping,
    parse_duration,
    string,
)
from incidentio_operator.api.customfields import CustomFieldSource, parse_custom_fields

DEFAULT_BASE_URL = "https://api.incident.io"
DEFAULT_NAME_PREFIX = "[AnomalyArmor]"
TEST_REQUESTED_ANNOTATION = "alerting.armor.dev/test-requested-at"
# Held while any alert holds an incident that may be open through the destination (and only then), so that
# deleting the destination first (an uninstall, a namespace teardown) cannot strand those incidents.
DESTINATION_FINALIZER = "alerting.armor.dev/open-incidents"
ALERT_SEVERITIES = ("info", "warning", "critical")


@dataclass(frozen=True)
class SeverityMapping:
    """Alert severity → incident.io severity name or ID."""

    default: str = ""
    by_alert_severity: Mapping[str, str] = field(default_factory=dict)

    @property
    def configured(self) -> bool:
        return bool(self.default or self.by_alert_severity)


@dataclass(frozen=True)
class IncidentTemplate:
    name_prefix: str = DEFAULT_NAME_PREFIX
    visibility: str = "public"
    mode: str = "standard"
    severity: SeverityMapping = field(default_factory=SeverityMapping)
    incident_type_id: str = ""
    notify_incident_channel: bool = True
    # DESIGN.md §11: an open incident follows its alert (edits), and custom fields filled from the alert.
    updates: bool = True
    custom_fields: tuple[CustomFieldSource, ...] = ()


@dataclass(frozen=True)
class ConnectionTest:
    on_create: str = "Verify"
    interval: datetime.timedelta = datetime.timedelta(hours=1)


@dataclass(frozen=True)
class DestinationSpec:
    # The API key's Secret; "" when none is configured (allowed in AlertEvent mode only).
    secret_name: str = ""
    secret_key: str = "apiKey"
    closed_status_id: str = ""
    incident: IncidentTemplate = field(default_factory=IncidentTemplate)
    connection_test: ConnectionTest = field(default_factory=ConnectionTest)
    # How often each open incident is read back to notice it ended in incident.io (zero: never).
    drift_check_interval: datetime.timedelta = datetime.timedelta(minutes=10)
    base_url: str = DEFAULT_BASE_URL
    suspend: bool = False
    delivery_mode: str = INCIDENT_MODE
    alert_source: AlertSourceRef | None = None
    heartbeat: HeartbeatSpec | None = None

    @property
    def alert_events(self) -> bool:
        """Deliveries go out as alert events to ``alert_source`` rather than as incidents (DESIGN.md §10)."""
        return self.delivery_mode == ALERT_EVENT_MODE

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> DestinationSpec:
        mode = alertsource.delivery_mode(spec)
        secret_ref = mapping(spec.get("apiKeySecretRef"), "spec.apiKeySecretRef")
        secret_name = string(secret_ref.get("name"), "spec.apiKeySecretRef.name")
        if not secret_name and (mode == INCIDENT_MODE or spec.get("apiKeySecretRef") is not None):
            raise SpecError("spec.apiKeySecretRef.name", "name the Secret that holds the API key")
        incident = mapping(spec.get("incident"), "spec.incident")
        severity = mapping(incident.get("severity"), "spec.incident.severity")
        severity_map = mapping(severity.get("map"), "spec.incident.severity.map")
        for alert_severity, target in severity_map.items():
            if alert_severity not in ALERT_SEVERITIES:
                raise SpecError(
                    f"spec.incident.severity.map.{alert_severity}",
                    f"keys must be alert severities ({', '.join(ALERT_SEVERITIES)})",
                )
            string(target, f"spec.incident.severity.map.{alert_severity}")
        test = mapping(spec.get("connectionTest"), "spec.connectionTest")
        interval_text = string(test.get("interval"), "spec.connectionTest.interval", "1h")
        try:
            interval = parse_duration(interval_text)
        except ValueError:
            raise SpecError("spec.connectionTest.interval", "must be a duration such as 30m or 1h") from None
        if interval < datetime.timedelta(minutes=1):
            raise SpecError("spec.connectionTest.interval", "must be at least 1m")
        base_url = string(spec.get("baseURL"), "spec.baseURL", DEFAULT_BASE_URL).rstrip("/")
        if not base_url.startswith(("http://", "https://")):
            raise SpecError("spec.baseURL", "must start with https:// (or http:// for a local simulator)")
        return cls(
            secret_name=secret_name,
            secret_key=string(secret_ref.get("key"), "spec.apiKeySecretRef.key", "apiKey") or "apiKey",
            closed_status_id=string(spec.get("closedStatusId"), "spec.closedStatusId"),
            incident=IncidentTemplate(
                name_prefix=string(incident.get("namePrefix"), "spec.incident.namePrefix", DEFAULT_NAME_PREFIX),
                visibility=choice(
                    incident.get("visibility"), "spec.incident.visibility", ("public", "private"), "public"
                ),
                mode=choice(incident.get("mode"), "spec.incident.mode", ("standard", "test"), "standard"),
                severity=SeverityMapping(
                    default=string(severity.get("default"), "spec.incident.severity.default"),
                    by_alert_severity={str(k): str(v) for k, v in severity_map.items()},
                ),
                incident_type_id=string(incident.get("incidentTypeId"), "spec.incident.incidentTypeId"),
                notify_incident_channel=boolean(
                    incident.get("notifyIncidentChannel"), "spec.incident.notifyIncidentChannel", True
                ),
                updates=choice(incident.get("updates"), "spec.incident.updates", ("On", "Off"), "On") == "On",
                custom_fields=parse_custom_fields(incident.get("customFields")),
            ),
            connection_test=ConnectionTest(
                on_create=choice(
                    test.get("onCreate"), "spec.connectionTest.onCreate", ("Verify", "CreateTestIncident"), "Verify"
                ),
                interval=interval,
            ),
            drift_check_interval=_duration(
                mapping(spec.get("driftCheck"), "spec.driftCheck").get("interval"), "spec.driftCheck.interval", "10m"
            ),
            base_url=base_url,
            suspend=boolean(spec.get("suspend"), "spec.suspend", False),
            delivery_mode=mode,
            alert_source=alertsource.alert_source(spec, mode),
            heartbeat=alertsource.heartbeat(spec),
        )


def _duration(value: Any, field: str, default: str) -> datetime.timedelta:
    try:
        return parse_duration(string(value, field, default) or default)
    except ValueError as exc:
        raise SpecError(field, f"{exc}; use a duration such as 10m") from None


@dataclass(frozen=True)
class Destination:
    """A destination as the operator sees it: identity, parsed spec (or why it does not parse), status."""

    ref: ObjectRef
    uid: str
    generation: int
    spec: DestinationSpec | None
    spec_error: SpecError | None
    status: Mapping[str, Any]
    annotations: Mapping[str, str]
    deleting: bool = False
    finalizers: tuple[str, ...] = ()
    resource_version: str = ""

    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> Destination:
        meta = body.get("metadata") or {}
        spec: DestinationSpec | None = None
        error: SpecError | None = None
        try:
            spec = DestinationSpec.parse(body.get("spec") or {})
        except SpecError as exc:
            error = exc
        return cls(
            ref=ObjectRef.of(body),
            uid=str(meta.get("uid") or ""),
            generation=int(meta.get("generation") or 0),
            spec=spec,
            spec_error=error,
            status=body.get("status") or {},
            annotations=meta.get("annotations") or {},
            deleting=bool(meta.get("deletionTimestamp")),
            finalizers=tuple(meta.get("finalizers") or ()),
            resource_version=str(meta.get("resourceVersion") or ""),
        )

    @property
    def ready(self) -> bool:
        """Ready as last reported, and for the current generation of the spec."""
        condition = condition_of(self.status, "Ready")
        return (
            condition is not None
            and condition.get("status") == "True"
            and self.status.get("observedGeneration") == self.generation
            and not self.deleting
        )

    @property
    def ready_reason(self) -> str:
        """The Ready condition's reason as last written ('' before the first test)."""
        return str((condition_of(self.status, "Ready") or {}).get("reason") or "")

    @property
    def not_ready_reason(self) -> str:
        if self.deleting:
            return "being deleted"
        condition = condition_of(self.status, "Ready")
        if condition is None or self.status.get("observedGeneration") != self.generation:
            return "connection test not run yet"
        return f"{condition.get('reason')}: {condition.get('message')}"

    @property
    def severity_ids(self) -> Mapping[str, Any]:
        value = self.status.get("severityIds")
        return value if isinstance(value, Mapping) else {}

    @property
    def custom_field_ids(self) -> Mapping[str, Any]:
        """``status.customFieldIds``: each configured field (as the spec names it) → its id, type and options."""
        value = self.status.get("customFieldIds")
        return value if isinstance(value, Mapping) else {}
