"""The floor: N creates then N closes sent straight to the simulator by a bare async httpx loop, as its own process.

Run as ``python -m bench.floor URL KEY N CONCURRENCY [httpx|operator]``; it is a separate process like the
operator, so the two get the same share of the machine. ``httpx`` (the default) is httpx as it comes, the floor
the targets are set against; ``operator`` is the same loop over the transport the operator's incident.io
client uses, so the ratio to it shows what the operator adds beyond that transport.
"""

from __future__ import annotations

import asyncio
import sys

import httpx

from incidentio_operator.incidentio.transport import AiohttpTransport
from incidentio_operator.standins.simulator import CLOSED_STATUS_ID


async def _flood(url: str, key: str, count: int, concurrency: int, transport: str) -> None:
    limit = asyncio.Semaphore(concurrency)
    headers = {"Authorization": f"Bearer {key}"}
    async with httpx.AsyncClient(
        base_url=url,
        headers=headers,
        timeout=60.0,
        limits=httpx.Limits(max_connections=concurrency),
        transport=AiohttpTransport(max_connections=concurrency) if transport == "operator" else None,
    ) as client:

        async def create(index: int) -> str:
            body = {
                "idempotency_key": f"floor-{index}",
                "name": f"[AnomalyArmor] Column removed from floor-{index:05d}",
                "summary": "A column disappeared in the last schema scan.\n\nSource: AnomalyArmor",
                "mode": "standard",
                "visibility": "public",
            }
            async with limit:
                response = await client.post("/v2/incidents", json=body)
            response.raise_for_status()
            return str(response.json()["incident"]["id"])

        async def close(incident_id: str) -> None:
            body = {"incident": {"incident_status_id": CLOSED_STATUS_ID}, "notify_incident_channel": True}
            async with limit:
                response = await client.post(f"/v2/incidents/{incident_id}/actions/edit", json=body)
            response.raise_for_status()

        ids = await asyncio.gather(*(create(i) for i in range(count)))
        await asyncio.gather(*(close(incident_id) for incident_id in ids))


def main(argv: list[str]) -> int:
    url, key, count, concurrency = argv[0], argv[1], int(argv[2]), int(argv[3])
    transport = argv[4] if len(argv) > 4 else "httpx"
    if transport not in ("httpx", "operator"):
        print(f"unknown transport {transport!r}: httpx or operator", file=sys.stderr)
        return 2
    asyncio.run(_flood(url, key, count, concurrency, transport))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
