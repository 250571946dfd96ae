"""kopf wiring for DataAlert: every watch event goes to the controller, which keeps its shard's alerts."""

from __future__ import annotations

from typing import Any

import kopf

from incidentio_operator.api import ALERTS, GROUP, VERSION


# Every handler here is async: kopf runs sync handlers in a thread pool, and the controller's
# store must only ever be touched from the event loop.
# No `when=` shard filter: an alert whose labels move it out of this replica's shard must still be seen
# to leave (the controller forgets it, or finishes the incidents it opened for it).
# The raw object, not kopf's Body view over it: the controller reads it field by field, and through the view
# each read costs a lookup in kopf's wrapper.
def _news(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> bool:
    """Not the echo of a version the controller holds: kopf skips calling the handler for those."""
    return not memo.controller.echo(event.get("type"), event["object"])


@kopf.on.event(GROUP, VERSION, ALERTS, when=_news)
async def alert_event(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    memo.controller.observe(ALERTS, event.get("type"), event["object"])
