"""A destination's delivery mode, its incident.io alert source and its heartbeat (DESIGN.md §10), as parsed specs."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from incidentio_operator.api.common import SpecError, choice, mapping, parse_duration, string

INCIDENT_MODE = "Incident"
ALERT_EVENT_MODE = "AlertEvent"
DELIVERY_MODES = (INCIDENT_MODE, ALERT_EVENT_MODE)
DEFAULT_TOKEN_KEY = "token"
DEFAULT_HEARTBEAT_INTERVAL = datetime.timedelta(minutes=1)
# Pinging more often than this would spend the heartbeat's own allowance and the status writes that go
# with each ping (see controller/heartbeat.py) for no earlier page: incident.io counts whole intervals.
MIN_HEARTBEAT_INTERVAL = datetime.timedelta(seconds=10)


@dataclass(frozen=True, slots=True)
class SecretKeyRef:
    """A key of a Secret in the destination's own namespace."""

    name: str
    key: str

    def __str__(self) -> str:
        return f"Secret {self.name} (key {self.key})"


@dataclass(frozen=True, slots=True)
class AlertSourceRef:
    """The HTTP alert source alert events go to: its config ID (in the events' path) and its token."""

    config_id: str
    token: SecretKeyRef


@dataclass(frozen=True, slots=True)
class HeartbeatSpec:
    """A heartbeat alert source the operator pings every ``interval`` while it is healthy."""

    alert_source_config_id: str
    token: SecretKeyRef
    interval: datetime.timedelta = DEFAULT_HEARTBEAT_INTERVAL


def secret_key_ref(value: Any, field: str, default_key: str) -> SecretKeyRef:
    """``{name, key}``; the name is required, the key defaults to ``default_key``."""
    ref = mapping(value, field)
    name = string(ref.get("name"), f"{field}.name")
    if not name:
        raise SpecError(f"{field}.name", "name the Secret")
    return SecretKeyRef(name, string(ref.get("key"), f"{field}.key", default_key) or default_key)


def delivery_mode(spec: Mapping[str, Any]) -> str:
    delivery = mapping(spec.get("delivery"), "spec.delivery")
    return choice(delivery.get("mode"), "spec.delivery.mode", DELIVERY_MODES, INCIDENT_MODE)


def alert_source(spec: Mapping[str, Any], mode: str) -> AlertSourceRef | None:
    """``spec.alertSource``; required in AlertEvent mode, where alert events go to it."""
    if spec.get("alertSource") is None:
        if mode == ALERT_EVENT_MODE:
            raise SpecError(
                "spec.alertSource", "delivery mode AlertEvent needs an alert source (configId, tokenSecretRef)"
            )
        return None
    source = mapping(spec.get("alertSource"), "spec.alertSource")
    config_id = string(source.get("configId"), "spec.alertSource.configId")
    if not config_id:
        raise SpecError("spec.alertSource.configId", "set the alert source config ID of an HTTP alert source")
    token = secret_key_ref(source.get("tokenSecretRef"), "spec.alertSource.tokenSecretRef", DEFAULT_TOKEN_KEY)
    return AlertSourceRef(config_id, token)


def heartbeat(spec: Mapping[str, Any]) -> HeartbeatSpec | None:
    """``spec.heartbeat``, or None when the destination has none."""
    if spec.get("heartbeat") is None:
        return None
    raw = mapping(spec.get("heartbeat"), "spec.heartbeat")
    config_id = string(raw.get("alertSourceConfigId"), "spec.heartbeat.alertSourceConfigId")
    if not config_id:
        raise SpecError("spec.heartbeat.alertSourceConfigId", "set the config ID of a heartbeat alert source")
    token = secret_key_ref(raw.get("tokenSecretRef"), "spec.heartbeat.tokenSecretRef", DEFAULT_TOKEN_KEY)
    text = string(raw.get("interval"), "spec.heartbeat.interval", "1m")
    try:
        interval = parse_duration(text)
    except ValueError:
        raise SpecError("spec.heartbeat.interval", "must be a duration such as 30s or 1m") from None
    if interval < MIN_HEARTBEAT_INTERVAL:
        raise SpecError("spec.heartbeat.interval", "must be at least 10s")
    return HeartbeatSpec(config_id, token, interval)
