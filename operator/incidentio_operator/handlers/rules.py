"""kopf wiring for AlertRule: watch events go to the controller."""

from __future__ import annotations

from typing import Any

import kopf

from incidentio_operator.api import GROUP, RULES, VERSION


@kopf.on.event(GROUP, VERSION, RULES)
async def rule_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.observe(RULES, event.get("type"), body)
