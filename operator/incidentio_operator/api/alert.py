"""The DataAlert kind: one alert from a detector and its lifecycle state."""

from __future__ import annotations

import datetime
import functools
import json
import sys
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any

from incidentio_operator.api.common import ObjectRef, SpecError, choice, mapping, parse_time, string

ALERT_STATES = ("triggered", "acknowledged", "snoozed", "resolved", "dismissed")
ACTIVE_STATES = frozenset({"triggered", "acknowledged", "snoozed"})
CLOSING_STATES = frozenset({"resolved", "dismissed"})
FINALIZER = "alerting.armor.dev/close-incidents"
# Set with the finalizer: which replica (shard) opened the alert's incidents, and so must finish them even if
# the alert's labels later move it out of that replica's shard (docs/operations.md, Sharding).
OWNER_LABEL = "alerting.armor.dev/owner"
# Shared by every alert without labels (read-only), rather than an empty dict each.
NO_LABELS: Mapping[str, str] = MappingProxyType({})


@dataclass(frozen=True, slots=True)
class Asset:
    id: str = ""
    qualified_name: str = ""
    environment: str = ""
    database: str = ""
    schema: str = ""
    table: str = ""


@dataclass(frozen=True, slots=True)
class Change:
    type: str
    column: str = ""
    from_type: str = ""
    to_type: str = ""
    description: str = ""


@dataclass(frozen=True, slots=True)
class DataAlertSpec:
    title: str
    event_type: str
    severity: str
    state: str = "triggered"
    description: str = ""
    external_id: str = ""
    source: str = "AnomalyArmor"
    asset: Asset = field(default_factory=Asset)
    changes: tuple[Change, ...] = ()
    detected_at: str = ""
    # With state snoozed: no new incident before this moment; afterwards the alert counts as triggered.
    snoozed_until: datetime.datetime | None = None
    # The alert in the detector's own UI: an alert event's source_url.
    link: str = ""
    # Delete the alert this long after it settled (DESIGN.md §11); None: the operator's --settled-alert-ttl.
    ttl_seconds_after_settled: int | None = None

    @property
    def asset_key(self) -> str:
        """What a cooldown counts repeats of: the asset's id, else its qualified name ('' when neither is set)."""
        return self.asset.id or self.asset.qualified_name

    def snoozed_at(self, now: datetime.datetime) -> bool:
        """Snoozed with a snooze that still lasts at ``now`` (a snooze without an end holds nothing back)."""
        return self.state == "snoozed" and self.snoozed_until is not None and now < self.snoozed_until

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> DataAlertSpec:
        title = string(spec.get("title"), "spec.title")
        if not title:
            raise SpecError("spec.title", "an alert needs a title")
        event_type = string(spec.get("eventType"), "spec.eventType")
        if not event_type:
            raise SpecError("spec.eventType", "set the event type, e.g. schema_change")
        severity = string(spec.get("severity"), "spec.severity")
        if severity not in ("info", "warning", "critical"):
            raise SpecError("spec.severity", "must be one of info, warning, critical")
        asset = mapping(spec.get("asset"), "spec.asset")
        changes = []
        for index, raw in enumerate(spec.get("changes") or []):
            item = mapping(raw, f"spec.changes[{index}]")
            changes.append(
                Change(
                    type=_common(string(item.get("type"), f"spec.changes[{index}].type")),
                    column=_common(string(item.get("column"), f"spec.changes[{index}].column")),
                    from_type=_common(string(item.get("fromType"), f"spec.changes[{index}].fromType")),
                    to_type=_common(string(item.get("toType"), f"spec.changes[{index}].toType")),
                    description=string(item.get("description"), f"spec.changes[{index}].description"),
                )
            )
        if changes and event_type != "schema_change":
            raise SpecError("spec.changes", "changes are only allowed with eventType: schema_change")
        return cls(
            title=title,
            event_type=_common(event_type),
            severity=_common(severity),
            state=_common(choice(spec.get("state"), "spec.state", ALERT_STATES, "triggered")),
            description=_common(string(spec.get("description"), "spec.description")),
            external_id=string(spec.get("externalId"), "spec.externalId"),
            source=_common(string(spec.get("source"), "spec.source", "AnomalyArmor") or "AnomalyArmor"),
            asset=Asset(
                id=string(asset.get("id"), "spec.asset.id"),
                qualified_name=string(asset.get("qualifiedName"), "spec.asset.qualifiedName"),
                environment=_common(string(asset.get("environment"), "spec.asset.environment")),
                database=_common(string(asset.get("database"), "spec.asset.database")),
                schema=_common(string(asset.get("schema"), "spec.asset.schema")),
                table=string(asset.get("table"), "spec.asset.table"),
            ),
            changes=tuple(changes),
            detected_at=string(spec.get("detectedAt"), "spec.detectedAt"),
            snoozed_until=_snoozed_until(spec.get("snoozedUntil")),
            link=_link(spec.get("link")),
            ttl_seconds_after_settled=_ttl(spec.get("ttlSecondsAfterSettled")),
        )


def _common(text: str) -> str:
    """One string object for a value many alerts share (an event type, environment, schema, rule name).

    Each watch event decodes its own copy of every string; 50,000 alerts held would keep 50,000 copies.
    """
    return sys.intern(text)


def _ttl(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise SpecError("spec.ttlSecondsAfterSettled", "must be a whole number of seconds, 0 or more")
    return value


def _snoozed_until(value: Any) -> datetime.datetime | None:
    text = string(value, "spec.snoozedUntil")
    if not text:
        return None
    moment = parse_time(text)
    if moment is None:
        raise SpecError("spec.snoozedUntil", "must be an RFC 3339 time such as 2026-12-01T09:00:00Z")
    return moment


def _link(value: Any) -> str:
    text = string(value, "spec.link")
    if text and not text.startswith(("https://", "http://")):
        raise SpecError("spec.link", "must be an http(s) URL, such as the alert's page in the detector")
    return text


@dataclass(frozen=True, slots=True)
class Admission:
    """A delivery the alert's rules let through to a destination: what cooldowns and daily caps count."""

    destination: str
    epoch: int
    rules: tuple[str, ...]
    opened_at: datetime.datetime | None
    reference: str


def _holds_incident(delivery: Mapping[str, Any]) -> bool:
    """An incident exists, or may (a create went out): the same rule as decisions' Delivery.holds_incident."""
    state = delivery.get("state")
    return state in ("Open", "Closing", "Firing") or (state == "Pending" and int(delivery.get("attempts") or 0) > 0)


def _admissions(deliveries: list[Mapping[str, Any]]) -> tuple[Admission, ...]:
    """Deliveries that opened an incident, or may have (a create went out), with the rules that let them through."""
    found = []
    for item in deliveries:
        sent = bool(item.get("incidentId")) or int(item.get("attempts") or 0) > 0
        if item.get("state") in ("Suppressed", "Deferred") or not sent:
            continue
        found.append(
            Admission(
                destination=_common(str(item.get("destination") or "")),
                epoch=int(item.get("epoch") or 0),
                rules=tuple(_common(str(rule)) for rule in item.get("admittedBy") or item.get("rules") or ()),
                opened_at=parse_time(str(item.get("openedAt") or "")),
                reference=str(item.get("reference") or ""),
            )
        )
    return tuple(found)


@dataclass(frozen=True, slots=True)
class DataAlert:
    """An alert as the operator keeps it: thousands may be held at once, so the status is kept as
    compact JSON (a quarter of the memory of the parsed dicts) with the few facts read across all
    alerts (matched rules, whether work may be left, delivery counts) taken out once. An alert at rest
    (settled, holding no incident) keeps it zlib-compressed: most of 50,000 alerts are, their status is
    read again only when a rule changes, and compressed it takes 0.5 kB instead of 1.2 kB (27 us to
    compress, once per status)."""

    ref: ObjectRef
    uid: str
    generation: int
    labels: Mapping[str, str]
    spec: DataAlertSpec | None
    spec_error: SpecError | None
    status_json: str | bytes
    finalizers: tuple[str, ...]
    deleting: bool
    resource_version: str = ""
    matched_rules: tuple[str, ...] = ()
    unsettled: bool = True
    pending_deliveries: int = 0
    waiting_deliveries: int = 0
    admissions: tuple[Admission, ...] = ()
    # The destinations (as deliveries name them) through which this alert holds an incident that may be
    # open: a destination is not let go while any alert holds one through it.
    holding: tuple[str, ...] = ()
    # The retention stamps (status.settledAt, status.deleteAfter; '' when absent), read at every restart.
    settled_at: str = ""
    delete_after: str = ""

    @property
    def status(self) -> Mapping[str, Any]:
        """The status as last written: read-only, shared by every reader of the same status."""
        return _parsed_status(self.status_json)

    @classmethod
    def from_body(cls, body: Mapping[str, Any], *, before: DataAlert | None = None) -> DataAlert:
        """The alert in ``body``; ``before``, the same object as last held, lends its parsed spec when the
        generation says the spec has not changed since (the API server bumps it on every spec change)."""
        meta = body.get("metadata") or {}
        spec: DataAlertSpec | None = None
        error: SpecError | None = None
        generation = int(meta.get("generation") or 0)
        same = before is not None and before.uid == str(meta.get("uid") or "") and before.generation == generation
        if before is not None and same and generation:
            spec, error = before.spec, before.spec_error
        else:
            try:
                spec = DataAlertSpec.parse(body.get("spec") or {})
            except SpecError as exc:
                error = exc
        return cls(
            ref=ObjectRef.of(body),
            uid=str(meta.get("uid") or ""),
            generation=generation,
            labels=meta.get("labels") or NO_LABELS,
            spec=spec,
            spec_error=error,
            finalizers=tuple(meta.get("finalizers") or ()),
            deleting=bool(meta.get("deletionTimestamp")),
            resource_version=str(meta.get("resourceVersion") or ""),
            **_status_facts(body.get("status") or {}, generation),
        )

    def with_status(self, status: Mapping[str, Any]) -> DataAlert:
        """The same alert with another status (for an alert that is gone, whose status lives only here)."""
        return replace(self, **_status_facts(status, self.generation))


@functools.lru_cache(maxsize=64)
def _parsed_status(status_json: str | bytes) -> Mapping[str, Any]:
    """One parse for the several readers of an alert's status in a reconciliation (routing, planning,
    readiness, retention each read it). A string (or bytes, compressed) caches its hash, so a lookup costs
    no rehash of the JSON."""
    parsed: dict[str, Any] = json.loads(zlib.decompress(status_json) if isinstance(status_json, bytes) else status_json)
    return parsed


def _status_facts(status: Mapping[str, Any], generation: int) -> dict[str, Any]:
    """The status as compact JSON, and the facts read across all alerts taken out of it once."""
    deliveries = [d for d in status.get("deliveries") or () if isinstance(d, Mapping)]
    pending = [d for d in deliveries if d.get("state") in ("Pending", "Closing")]
    # A deferred delivery is due again at its reevaluateAt: the sweep looks at it too, as a safety net.
    deferred = any(d.get("state") == "Deferred" for d in deliveries)
    ready = next((c for c in status.get("conditions") or () if isinstance(c, Mapping) and c.get("type") == "Ready"), {})
    # Work may be left: not Ready, not yet looked at in this generation, or a delivery not done.
    unsettled = (
        ready.get("status") != "True" or status.get("observedGeneration") != generation or bool(pending) or deferred
    )
    holding = tuple(sorted({_common(str(d.get("destination"))) for d in deliveries if _holds_incident(d)}))
    text = json.dumps(status, separators=(",", ":"))
    return {
        "status_json": text if unsettled or holding else zlib.compress(text.encode(), 1),
        "matched_rules": tuple(_common(str(name)) for name in status.get("matchedRules") or ()),
        "unsettled": unsettled,
        "pending_deliveries": len(pending),
        "waiting_deliveries": sum(1 for d in pending if d.get("waitingFor")),
        "admissions": _admissions(deliveries),
        "holding": holding,
        "settled_at": str(status.get("settledAt") or ""),
        "delete_after": str(status.get("deleteAfter") or ""),
    }
