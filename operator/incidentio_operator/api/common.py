"""What the three kinds share: the API group, object references, conditions and time formatting."""

from __future__ import annotations

import datetime
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

GROUP = "alerting.armor.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
# The kinds' resource names (plurals), as the API server's paths and kopf's watches name them.
ALERTS, DESTINATIONS, RULES = "dataalerts", "incidentiodestinations", "alertrules"


class SpecError(ValueError):
    """A spec the operator cannot act on: names the field and says how to fix it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, order=True, slots=True)
class ObjectRef:
    """A namespaced object's coordinates."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}/{self.name}"

    @classmethod
    def of(cls, body: Mapping[str, Any]) -> ObjectRef:
        meta = body.get("metadata") or {}
        # One string per namespace, not one per object held (thousands of alerts share a few namespaces).
        return cls(namespace=sys.intern(str(meta.get("namespace") or "")), name=str(meta.get("name") or ""))


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def format_time(moment: datetime.datetime) -> str:
    """RFC 3339 in UTC with second precision, as Kubernetes writes timestamps."""
    return moment.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_time(value: str | None) -> datetime.datetime | None:
    if not value:
        return None
    try:
        parsed = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.UTC)


_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_duration(value: str) -> datetime.timedelta:
    """A Go-style duration such as ``1h30m``; raises ValueError for anything else."""
    text = value.strip()
    if not text:
        raise ValueError("empty duration")
    position = 0
    seconds = 0.0
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001}
    for match in _DURATION_PART.finditer(text):
        if match.start() != position:
            raise ValueError(f"not a duration: {value!r}")
        seconds += float(match.group(1)) * units[match.group(2)]
        position = match.end()
    if position != len(text):
        raise ValueError(f"not a duration: {value!r}")
    return datetime.timedelta(seconds=seconds)


@dataclass(frozen=True, slots=True)
class Condition:
    """A metav1.Condition as kstatus, ``kubectl wait`` and Argo CD read it."""

    type: str
    status: str
    reason: str
    message: str
    observed_generation: int | None = None

    def to_json(
        self, previous: Sequence[Mapping[str, Any]] = (), now: datetime.datetime | None = None
    ) -> dict[str, Any]:
        """Keep lastTransitionTime from the previous condition of this type unless the status flipped."""
        transition = format_time(now or utcnow())
        for old in previous:
            if old.get("type") == self.type and old.get("status") == self.status and old.get("lastTransitionTime"):
                transition = str(old["lastTransitionTime"])
        result: dict[str, Any] = {
            "type": self.type,
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "lastTransitionTime": transition,
        }
        if self.observed_generation is not None:
            result["observedGeneration"] = self.observed_generation
        return result


def ready_conditions(
    *,
    ready: bool,
    reason: str,
    message: str,
    generation: int | None,
    previous: Sequence[Mapping[str, Any]] = (),
    progressing: bool = False,
    settled: bool = False,
    now: datetime.datetime | None = None,
) -> list[dict[str, Any]]:
    """The Ready condition plus kstatus's abnormal-true pair (Reconciling, Stalled).

    kstatus (Flux's ``wait: true``) ignores Ready on custom kinds; it reads Reconciling=True as
    in progress and Stalled=True as failed, so a not-Ready object says which of the two it is.
    A ``settled`` object is not Ready on purpose (suspended): neither in progress nor failed.
    """
    conditions = [Condition("Ready", "True" if ready else "False", reason, message, generation)]
    if ready or settled:
        conditions.append(Condition("Reconciling", "False", reason, "", generation))
        conditions.append(Condition("Stalled", "False", reason, "", generation))
    elif progressing:
        conditions.append(Condition("Reconciling", "True", reason, message, generation))
        conditions.append(Condition("Stalled", "False", reason, "", generation))
    else:
        conditions.append(Condition("Reconciling", "False", reason, "", generation))
        conditions.append(Condition("Stalled", "True", reason, message, generation))
    return [condition.to_json(previous, now) for condition in conditions]


def condition_of(status: Mapping[str, Any] | None, kind: str) -> Mapping[str, Any] | None:
    for condition in (status or {}).get("conditions") or []:
        if isinstance(condition, Mapping) and condition.get("type") == kind:
            return condition
    return None


def string_list(value: Any, field: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise SpecError(field, "must be a list of strings")
    return tuple(value)


def mapping(value: Any, field: str) -> Mapping[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise SpecError(field, "must be an object")
    return value


def string(value: Any, field: str, default: str = "") -> str:
    if value is None:
        return default
    if not isinstance(value, str):
        raise SpecError(field, "must be a string")
    return value


def boolean(value: Any, field: str, default: bool) -> bool:
    if value is None:
        return default
    if not isinstance(value, bool):
        raise SpecError(field, "must be true or false")
    return value


def choice(value: Any, field: str, allowed: Sequence[str], default: str) -> str:
    text = string(value, field, default)
    if text not in allowed:
        raise SpecError(field, f"must be one of {', '.join(allowed)} (got {text!r})")
    return text


def differs(wanted: Mapping[str, Any], current: Mapping[str, Any]) -> bool:
    """True when writing ``wanted`` over ``current`` would change a field: an unchanged status is not written."""
    return any(current.get(key) != value for key, value in wanted.items())
