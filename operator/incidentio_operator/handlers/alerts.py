"""kopf wiring for DataAlert: every watch event goes to the controller, which keeps its shard's alerts."""

from __future__ import annotations

from typing import Any

import kopf

from incidentio_operator.api import ALERTS, GROUP, VERSION


# Every handler here is async: kopf runs sync handlers in a thread pool, and the controller's
# store must only ever be touched from the event loop.
# No `when=` shard filter: an alert whose labels move it out of this replica's shard must still be seen
# to leave (the controller forgets it, or finishes the incidents it opened for it).
@kopf.on.event(GROUP, VERSION, ALERTS)
async def alert_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.observe(ALERTS, event.get("type"), body)
