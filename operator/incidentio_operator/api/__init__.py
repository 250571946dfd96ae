"""Typed models of the four custom resources: their specs as parsed from Kubernetes, and their statuses."""

from incidentio_operator.api.alert import (
    ACTIVE_STATES,
    CLOSING_STATES,
    Admission,
    Asset,
    Change,
    DataAlert,
    DataAlertSpec,
)
from incidentio_operator.api.alertsource import AlertSourceRef, HeartbeatSpec, SecretKeyRef
from incidentio_operator.api.blackout import BLACKOUTS, AlertBlackout, AlertBlackoutSpec
from incidentio_operator.api.common import (
    ALERTS,
    API_VERSION,
    DESTINATIONS,
    GROUP,
    RULES,
    VERSION,
    Condition,
    ObjectRef,
    SpecError,
    differs,
    format_time,
    parse_time,
    ready_conditions,
)
from incidentio_operator.api.destination import (
    ConnectionTest,
    Destination,
    DestinationSpec,
    IncidentTemplate,
    SeverityMapping,
)
from incidentio_operator.api.rule import AlertRule, AlertRuleSpec, DestinationRef, LabelSelector, Scope
from incidentio_operator.api.schedule import Schedule

__all__ = [
    "ACTIVE_STATES",
    "ALERTS",
    "API_VERSION",
    "BLACKOUTS",
    "CLOSING_STATES",
    "DESTINATIONS",
    "GROUP",
    "RULES",
    "VERSION",
    "Admission",
    "AlertBlackout",
    "AlertBlackoutSpec",
    "AlertRule",
    "AlertRuleSpec",
    "AlertSourceRef",
    "Asset",
    "Change",
    "Condition",
    "ConnectionTest",
    "DataAlert",
    "DataAlertSpec",
    "Destination",
    "DestinationRef",
    "DestinationSpec",
    "HeartbeatSpec",
    "IncidentTemplate",
    "LabelSelector",
    "ObjectRef",
    "Schedule",
    "Scope",
    "SecretKeyRef",
    "SeverityMapping",
    "SpecError",
    "differs",
    "format_time",
    "parse_time",
    "ready_conditions",
]
