"""kopf wiring for DataAlert: every watch event goes to the controller's store and work queue."""

from __future__ import annotations

from typing import Any

import kopf

from incidentio_operator.api import ALERTS, GROUP, VERSION
from incidentio_operator.handlers.startup import options_of


def _in_shard(body: kopf.Body, memo: kopf.Memo, **_: Any) -> bool:
    return options_of(memo).handles(body)


# Every handler here is async: kopf runs sync handlers in a thread pool, and the controller's
# store must only ever be touched from the event loop.
@kopf.on.event(GROUP, VERSION, ALERTS, when=_in_shard)
async def alert_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.observe(ALERTS, event.get("type"), body)
