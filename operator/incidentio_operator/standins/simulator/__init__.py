"""A local stand-in for incident.io: the endpoints the operator uses, faithful to the published contract."""

from incidentio_operator.standins.simulator.config import (
    CLOSED_STATUS_ID,
    DECLINED_STATUS_ID,
    DEFAULT_ROLES,
    DOCUMENTING_STATUS_ID,
    INCIDENT_CREATOR,
    INCIDENT_EDITOR,
    INVESTIGATING_STATUS_ID,
    SEVERITY_CRITICAL_ID,
    SEVERITY_MAJOR_ID,
    SEVERITY_MINOR_ID,
    TRIAGE_STATUS_ID,
    VIEWER,
    ApiKeyConfig,
    IncidentStatusSeed,
    SeveritySeed,
    SimulatorConfig,
)
from incidentio_operator.standins.simulator.faults import Faults
from incidentio_operator.standins.simulator.server import RecordedRequest, Simulator

__all__ = [
    "CLOSED_STATUS_ID",
    "DECLINED_STATUS_ID",
    "DEFAULT_ROLES",
    "DOCUMENTING_STATUS_ID",
    "INCIDENT_CREATOR",
    "INCIDENT_EDITOR",
    "INVESTIGATING_STATUS_ID",
    "SEVERITY_CRITICAL_ID",
    "SEVERITY_MAJOR_ID",
    "SEVERITY_MINOR_ID",
    "TRIAGE_STATUS_ID",
    "VIEWER",
    "ApiKeyConfig",
    "Faults",
    "IncidentStatusSeed",
    "RecordedRequest",
    "SeveritySeed",
    "Simulator",
    "SimulatorConfig",
]
