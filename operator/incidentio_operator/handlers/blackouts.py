"""kopf wiring for AlertBlackout: watch events go to the controller."""

from __future__ import annotations

from typing import Any

import kopf

from incidentio_operator.api import BLACKOUTS, GROUP, VERSION


@kopf.on.event(GROUP, VERSION, BLACKOUTS)
async def blackout_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.observe(BLACKOUTS, event.get("type"), body)
