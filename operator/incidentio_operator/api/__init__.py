"""Typed models of the three custom resources: their specs as parsed from Kubernetes, and their statuses."""

from incidentio_operator.api.alert import (
    ACTIVE_STATES,
    CLOSING_STATES,
    Asset,
    Change,
    DataAlert,
    DataAlertSpec,
)
from incidentio_operator.api.common import (
    GROUP,
    VERSION,
    Condition,
    ObjectRef,
    SpecError,
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

__all__ = [
    "ACTIVE_STATES",
    "CLOSING_STATES",
    "GROUP",
    "VERSION",
    "AlertRule",
    "AlertRuleSpec",
    "Asset",
    "Change",
    "Condition",
    "ConnectionTest",
    "DataAlert",
    "DataAlertSpec",
    "Destination",
    "DestinationRef",
    "DestinationSpec",
    "IncidentTemplate",
    "LabelSelector",
    "ObjectRef",
    "Scope",
    "SeverityMapping",
    "SpecError",
    "format_time",
    "parse_time",
    "ready_conditions",
]
