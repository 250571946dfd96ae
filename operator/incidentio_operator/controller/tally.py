"""Per destination, the deliveries counted since its status was last written, for its counters and lastDelivery."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from incidentio_operator.api import ObjectRef


@dataclass
class _Counts:
    created: int = 0
    closed: int = 0
    failed: int = 0
    last_delivery: dict[str, Any] = field(default_factory=dict)


class DeliveryTally:
    """Counters accumulate in memory and are added to what the destination's status already says."""

    def __init__(self) -> None:
        self._counts: dict[ObjectRef, _Counts] = {}

    def record(self, destination: ObjectRef, action: str, last_delivery: dict[str, Any]) -> None:
        """Count one delivery event (Created, Closed, Failed or LeftOpen) for the destination."""
        counts = self._counts.setdefault(destination, _Counts())
        if action == "Created":
            counts.created += 1
        elif action == "Closed":
            counts.closed += 1
        elif action == "Failed":
            counts.failed += 1
        counts.last_delivery = last_delivery

    def status_fields(self, destination: ObjectRef, status: Mapping[str, Any]) -> dict[str, Any]:
        """``counters`` (and ``lastDelivery``) as the destination's status should say them now."""
        counts = self._counts.get(destination) or _Counts()
        current = dict(status.get("counters") or {})
        fields: dict[str, Any] = {}
        if counts.created or counts.closed or counts.failed or not current:
            fields["counters"] = {
                "incidentsCreated": int(current.get("incidentsCreated") or 0) + counts.created,
                "incidentsClosed": int(current.get("incidentsClosed") or 0) + counts.closed,
                "deliveriesFailed": int(current.get("deliveriesFailed") or 0) + counts.failed,
            }
        if counts.last_delivery:
            fields["lastDelivery"] = counts.last_delivery
        return fields

    def written(self, destination: ObjectRef, before: Mapping[str, Any], fields: Mapping[str, Any]) -> None:
        """The status write of ``fields`` over ``before`` went through: keep only what was counted since."""
        counts = self._counts.get(destination)
        if counts is None:
            return
        if "counters" in fields:
            # Deliveries recorded while this write was on its way count towards the next one.
            base, sent = before.get("counters") or {}, fields["counters"]
            counts.created -= int(sent["incidentsCreated"]) - int(base.get("incidentsCreated") or 0)
            counts.closed -= int(sent["incidentsClosed"]) - int(base.get("incidentsClosed") or 0)
            counts.failed -= int(sent["deliveriesFailed"]) - int(base.get("deliveriesFailed") or 0)
        counts.last_delivery = {}

    def forget(self, destination: ObjectRef) -> None:
        self._counts.pop(destination, None)
