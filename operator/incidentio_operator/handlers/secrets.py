"""kopf wiring for Secrets: a changed Secret re-tests the destinations that read their key from it."""

from __future__ import annotations

from typing import Any

import kopf


@kopf.on.event("v1", "secrets")
async def secret_event(event: kopf.RawEvent, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    # Only the Secret's coordinates are passed on; its data stays in kopf's event.
    memo.controller.observe("secrets", event.get("type"), {"metadata": dict(body.metadata)})
