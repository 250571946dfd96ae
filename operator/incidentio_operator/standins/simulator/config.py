"""The simulated organisation: API keys, alert sources, seeded statuses, severities and custom fields, org rules."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, get_args

CLOSED_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG0"
DECLINED_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG1"
TRIAGE_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG2"
INVESTIGATING_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG3"
DOCUMENTING_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG4"
MERGED_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG5"
CANCELED_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG6"
PAUSED_STATUS_ID = "01FCNDV6P870EA6S7TK1DSYDG7"
# Categories after which an incident's status no longer changes (IncidentStatusV2.category in the spec lists
# eight; these four end an incident). Not documented as a rule by incident.io: modelled here, see README.
TERMINAL_CATEGORIES = frozenset({"closed", "declined", "merged", "canceled"})

SEVERITY_MINOR_ID = "01FH5TZRWMNAFB0DZ23FD1TV01"
SEVERITY_MAJOR_ID = "01FH5TZRWMNAFB0DZ23FD1TV02"
SEVERITY_CRITICAL_ID = "01FH5TZRWMNAFB0DZ23FD1TV03"

CUSTOM_FIELD_TEAM_ID = "01FCNDV6P870EA6S7TK1DSYDC1"
CUSTOM_FIELD_ENVIRONMENTS_ID = "01FCNDV6P870EA6S7TK1DSYDC2"
CUSTOM_FIELD_DATA_ASSET_ID = "01FCNDV6P870EA6S7TK1DSYDC3"
CUSTOM_FIELD_RUNBOOK_ID = "01FCNDV6P870EA6S7TK1DSYDC4"
CUSTOM_FIELD_AFFECTED_ROWS_ID = "01FCNDV6P870EA6S7TK1DSYDC5"

# incident.io: "We apply a rate limit of 120 events/minute for each alert source"
# (https://docs.incident.io/incidents/auto-create, "Every alert source is rate limited").
ALERT_EVENTS_PER_MINUTE = 120

# The roles the simulator checks; incident.io has many more, which keys may carry but nothing here needs.
VIEWER = "viewer"
INCIDENT_CREATOR = "incident_creator"
INCIDENT_EDITOR = "incident_editor"
DEFAULT_ROLES = frozenset({VIEWER, INCIDENT_CREATOR, INCIDENT_EDITOR})

RetryAfterForm = Literal["seconds", "http-date"]
# CustomFieldV2.field_type in the spec.
CustomFieldType = Literal["single_select", "multi_select", "text", "link", "numeric"]
CUSTOM_FIELD_TYPES: tuple[CustomFieldType, ...] = get_args(CustomFieldType)

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


@dataclass(frozen=True)
class CustomFieldOptionSeed:
    id: str
    value: str
    sort_key: int


@dataclass(frozen=True)
class CustomFieldSeed:
    """A custom field (CustomFieldV2); only select fields have options."""

    id: str
    name: str
    field_type: CustomFieldType
    description: str = ""
    options: tuple[CustomFieldOptionSeed, ...] = ()


@dataclass(frozen=True)
class HeartbeatSettings:
    """A heartbeat source's options (AlertSourceHeartbeatOptionsV2), in seconds.

    incident.io fires the heartbeat's alert when no ping came for ``interval_seconds * failure_threshold
    + grace_period_seconds`` (https://docs.incident.io/alerts/heartbeat-monitoring).
    """

    interval_seconds: int
    grace_period_seconds: int = 0
    failure_threshold: int = 1

    def __post_init__(self) -> None:
        if self.interval_seconds < 1 or self.grace_period_seconds < 0 or self.failure_threshold < 1:
            raise ValueError("a heartbeat needs an interval >= 1 s, a grace period >= 0 and a threshold >= 1")

    @property
    def window_seconds(self) -> int:
        return self.interval_seconds * self.failure_threshold + self.grace_period_seconds


@dataclass(frozen=True)
class AlertSourceConfig:
    """One alert source: HTTP sources take alert events, heartbeat sources take pings; the token never prints."""

    id: str
    name: str
    token: str = field(repr=False)
    source_type: str = "http"
    heartbeat: HeartbeatSettings | None = None

    def __post_init__(self) -> None:
        if not self.token:
            raise ValueError(f"alert source {self.name!r} needs a token")
        if (self.source_type == "heartbeat") != (self.heartbeat is not None):
            raise ValueError(f"alert source {self.name!r}: heartbeat settings go with source type heartbeat only")


def default_incident_statuses() -> list[IncidentStatusSeed]:
    return [
        IncidentStatusSeed(TRIAGE_STATUS_ID, "Triage", "triage", 0, "We are working out whether this is real."),
        IncidentStatusSeed(DECLINED_STATUS_ID, "Declined", "declined", 1, "This was not an incident."),
        IncidentStatusSeed(INVESTIGATING_STATUS_ID, "Investigating", "live", 2, "We are looking into it."),
        IncidentStatusSeed(
            DOCUMENTING_STATUS_ID, "Documenting", "learning", 3, "Impact is mitigated; we are writing it up."
        ),
        IncidentStatusSeed(CLOSED_STATUS_ID, "Closed", "closed", 4, "Impact is fully mitigated and documented."),
        IncidentStatusSeed(PAUSED_STATUS_ID, "Paused", "paused", 5, "Work is paused for now."),
        IncidentStatusSeed(MERGED_STATUS_ID, "Merged", "merged", 6, "Merged into another incident."),
        IncidentStatusSeed(CANCELED_STATUS_ID, "Canceled", "canceled", 7, "Opened by mistake."),
    ]


def default_severities() -> list[SeveritySeed]:
    return [
        SeveritySeed(SEVERITY_MINOR_ID, "Minor", 1, "Issues with **low impact**."),
        SeveritySeed(SEVERITY_MAJOR_ID, "Major", 2, "Issues with **significant impact**."),
        SeveritySeed(SEVERITY_CRITICAL_ID, "Critical", 3, "Issues with **severe impact**."),
    ]


def default_custom_fields() -> list[CustomFieldSeed]:
    """One field of each type CustomFieldV2.field_type lists, the selects with options."""

    def options(prefix: str, *values: str) -> tuple[CustomFieldOptionSeed, ...]:
        return tuple(
            CustomFieldOptionSeed(f"01FCNDV6P870EA6S7TK1DS{prefix}{number:02d}", value, number * 10)
            for number, value in enumerate(values, start=1)
        )

    return [
        CustomFieldSeed(
            CUSTOM_FIELD_TEAM_ID,
            "Affected Team",
            "single_select",
            "Which team is impacted by this issue",
            options("TM", "Data Platform", "Payments", "Growth"),
        ),
        CustomFieldSeed(
            CUSTOM_FIELD_ENVIRONMENTS_ID,
            "Environments",
            "multi_select",
            "Where the problem shows",
            options("EN", "production", "staging", "development"),
        ),
        CustomFieldSeed(CUSTOM_FIELD_DATA_ASSET_ID, "Data Asset", "text", "The table or view concerned"),
        CustomFieldSeed(CUSTOM_FIELD_RUNBOOK_ID, "Runbook", "link", "Where the fix is written down"),
        CustomFieldSeed(CUSTOM_FIELD_AFFECTED_ROWS_ID, "Affected Rows", "numeric", "How many rows are wrong"),
    ]


@dataclass
class SimulatorConfig:
    """How the simulated organisation behaves; tests may change it while the simulator runs."""

    keys: dict[str, ApiKeyConfig] = field(default_factory=dict)
    incident_statuses: list[IncidentStatusSeed] = field(default_factory=default_incident_statuses)
    severities: list[SeveritySeed] = field(default_factory=default_severities)
    custom_fields: list[CustomFieldSeed] = field(default_factory=default_custom_fields)
    alert_sources: dict[str, AlertSourceConfig] = field(default_factory=dict)
    alert_events_per_minute: int | None = ALERT_EVENTS_PER_MINUTE
    alert_events_refill_per_second: float = ALERT_EVENTS_PER_MINUTE / 60
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
            f"SimulatorConfig(keys={names}, alert_sources={list(self.alert_sources.values())}, "
            f"rate_limit_per_minute={self.rate_limit_per_minute}, alert_events_per_minute="
            f"{self.alert_events_per_minute}, "
            f"refill_per_second={self.refill_per_second}, retry_after_form={self.retry_after_form!r}, "
            f"severity_required={self.severity_required}, close_requires_role={self.close_requires_role!r})"
        )
