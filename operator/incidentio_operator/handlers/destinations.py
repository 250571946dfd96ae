"""kopf wiring for IncidentIoDestination: watch events go to the controller."""

from __future__ import annotations

from typing import Any

import kopf

from incidentio_operator.api import DESTINATIONS, GROUP, VERSION


@kopf.on.event(GROUP, VERSION, DESTINATIONS)
async def destination_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.observe(DESTINATIONS, event.get("type"), body)
