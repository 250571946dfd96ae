"""The simulated organisation: API keys, seeded incident statuses and severities, and org rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

CLOSED_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG0"
DECLINED_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG1"
TRIAGE_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG2"
INVESTIGATING_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG3"
DOCUMENTING_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG4"

SEVERITY_MINOR_ID = "01FH5TZRWMNAFB0DZ23FD1TV01"
SEVERITY_MAJOR_ID = "01FH5TZRWMNAFB0DZ23FD1TV02"
SEVERITY_CRITICAL_ID = "01FH5TZRWMNAFB0DZ23FD1TV03"

# The roles the simulator checks; incident.io has many more, which keys may carry but nothing here needs.
VIEWER = "viewer"
INCIDENT_CREATOR = "incident_creator"
INCIDENT_EDITOR = "incident_editor"
DEFAULT_ROLES = frozenset({VIEWER, INCIDENT_CREATOR, INCIDENT_EDITOR})

RetryAfterForm = Literal["seconds", "http-date"]

SEEDED_AT = "2021-08-17T13:28:57.801578Z"


@dataclass
class ApiKeyConfig:
    """What the organisation knows about one API key; the secret itself is only ever the dict key."""

    name: str
    roles: frozenset[str]


@dataclass(frozen=True)
class IncidentStatusSeed:
    id: str
    name: str
    category: str
    rank: int
    description: str = ""


@dataclass(frozen=True)
class SeveritySeed:
    id: str
    name: str
    rank: int
    description: str = ""


def default_incident_statuses() -> list[IncidentStatusSeed]:
    return [
        IncidentStatusSeed(
            TRIAGE_STATUS_ID, "Triage", "triage", 0, "We are working out whether this is real."
        ),
        IncidentStatusSeed(DECLINED_STATUS_ID, "Declined", "declined", 1, "This was not an incident."),
        IncidentStatusSeed(INVESTIGATING_STATUS_ID, "Investigating", "live", 2, "We are looking into it."),
        IncidentStatusSeed(
            DOCUMENTING_STATUS_ID, "Documenting", "learning", 3, "Impact is mitigated; we are writing it up."
        ),
        IncidentStatusSeed(
            CLOSED_STATUS_ID, "Closed", "closed", 4, "Impact is fully mitigated and documented."
        ),
    ]


def default_severities() -> list[SeveritySeed]:
    return [
        SeveritySeed(SEVERITY_MINOR_ID, "Minor", 1, "Issues with **low impact**."),
        SeveritySeed(SEVERITY_MAJOR_ID, "Major", 2, "Issues with **significant impact**."),
        SeveritySeed(SEVERITY_CRITICAL_ID, "Critical", 3, "Issues with **severe impact**."),
    ]


@dataclass
class SimulatorConfig:
    """How the simulated organisation behaves; tests may change it while the simulator runs."""

    keys: dict[str, ApiKeyConfig] = field(default_factory=dict)
    incident_statuses: list[IncidentStatusSeed] = field(default_factory=default_incident_statuses)
    severities: list[SeveritySeed] = field(default_factory=default_severities)
    rate_limit_per_minute: int | None = 1200
    refill_per_second: float = 20.0
    retry_after_form: RetryAfterForm = "seconds"
    severity_required: bool = False
    close_requires_role: str | None = None
    permalink_base: str = "https://app.incident.io/simulated/incidents"

    def __repr__(self) -> str:
        # The dataclass repr would print the secret keys; show only their names.
        names = sorted(key.name for key in self.keys.values())
        return (
            f"SimulatorConfig(keys={names}, rate_limit_per_minute={self.rate_limit_per_minute}, "
            f"refill_per_second={self.refill_per_second}, retry_after_form={self.retry_after_form!r}, "
            f"severity_required={self.severity_required}, close_requires_role={self.close_requires_role!r})"
        )
