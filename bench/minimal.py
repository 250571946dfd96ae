"""The honest floor: the least a controller must do per alert, as its own process, to compare the operator with.

Run as ``python -m bench.minimal KUBE_URL SIM_URL COUNT PER_MINUTE REFILL NAMESPACE=KEY...``. It lists and then
watches DataAlerts on the API stand-in (as kopf does: one list, then one watch from its resourceVersion), and
for each alert: on ``triggered``, one create over the operator's own incident.io client (its transport, its
per-key pacing at ``PER_MINUTE``/``REFILL``) and one status write; on ``resolved``, one close and one status
write. No kopf, no routing, no store, no finalizer, no Events. It exits once COUNT alerts are opened and closed.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Mapping
from typing import Any

import aiohttp

from incidentio_operator.incidentio import Account, ApiKey, IncidentIoClient, RateLimit
from incidentio_operator.incidentio.models import CreateIncidentRequest, EditIncidentRequest
from incidentio_operator.standins.simulator import CLOSED_STATUS_ID

ALERTS = "/apis/alerting.armor.dev/v1alpha1/dataalerts"
WORKERS = 32  # the operator's default --concurrency
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


class Minimal:
    """One watch, a queue of alerts, WORKERS workers each doing one call and one status write per change."""

    def __init__(self, kube: str, sim: str, keys: Mapping[str, str], count: int, limit: RateLimit) -> None:
        self.kube, self.count = kube, count
        self.accounts = {ns: Account(sim, ApiKey(key)) for ns, key in keys.items()}
        self.incidentio = IncidentIoClient(rate_limit=limit, max_connections=10)
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.opened: dict[tuple[str, str], str] = {}  # (namespace, name) -> incident ID
        self.closed: set[tuple[str, str]] = set()
        self.finished = 0  # closes answered and written
        self.resolved_early: dict[tuple[str, str], dict[str, Any]] = {}
        self.done = asyncio.Event()

    async def run(self) -> None:
        headers = {"Authorization": "Bearer bench-minimal"}
        async with aiohttp.ClientSession(self.kube, headers=headers) as session, self.incidentio:
            tasks = [asyncio.create_task(self.work(session)) for _ in range(WORKERS)]
            tasks += [asyncio.create_task(self.watch(session)), asyncio.create_task(self.done.wait())]
            # Done, or a task failed: its exception ends the process, rather than a silent worker less.
            finished, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            for task in finished:
                task.result()

    async def watch(self, session: aiohttp.ClientSession) -> None:
        async with session.get(ALERTS) as response:
            listed = await response.json()
        for item in listed.get("items") or ():
            self.queue.put_nowait(item)
        version = listed["metadata"]["resourceVersion"]
        params = {"watch": "true", "resourceVersion": version, "timeoutSeconds": "3600"}
        async with session.get(ALERTS, params=params, timeout=aiohttp.ClientTimeout(total=None)) as response:
            async for line in response.content:
                event = json.loads(line)
                if event.get("type") in ("ADDED", "MODIFIED"):
                    self.queue.put_nowait(event["object"])

    async def work(self, session: aiohttp.ClientSession) -> None:
        while True:
            body = await self.queue.get()
            meta, state = body["metadata"], body["spec"]["state"]
            key = (meta["namespace"], meta["name"])
            account = self.accounts[key[0]]
            path = f"{ALERTS.replace('/dataalerts', '')}/namespaces/{key[0]}/dataalerts/{key[1]}/status"
            if state == "triggered" and key not in self.opened:
                self.opened[key] = ""  # claimed: the echo of the write below must not create again
                request = CreateIncidentRequest(
                    idempotency_key=meta["uid"], name=f"[{body['spec']['source']}] {body['spec']['title']}"
                )
                incident = await self.incidentio.create_incident(account, request)
                self.opened[key] = incident.id
                status = {"status": {"observedState": "triggered", "incidents": incident.id}}
                if key in self.resolved_early:
                    self.queue.put_nowait(self.resolved_early.pop(key))
            elif state == "resolved" and self.opened.get(key) == "":
                self.resolved_early[key] = body  # its create is under way: close once it is answered
                continue
            elif state == "resolved" and self.opened.get(key) and key not in self.closed:
                self.closed.add(key)
                close = EditIncidentRequest(incident_status_id=CLOSED_STATUS_ID, notify_incident_channel=True)
                await self.incidentio.edit_incident(account, self.opened[key], close)
                status = {"status": {"observedState": "resolved"}}
            else:
                continue
            async with session.patch(path, data=json.dumps(status), headers=MERGE_PATCH) as response:
                response.raise_for_status()
            if state == "resolved":
                self.finished += 1
                if self.finished >= self.count:
                    self.done.set()


def main(argv: list[str]) -> int:
    kube, sim, count, per_minute, refill = argv[0], argv[1], int(argv[2]), int(argv[3]), float(argv[4])
    keys = dict(pair.split("=", 1) for pair in argv[5:])
    asyncio.run(Minimal(kube, sim, keys, count, RateLimit(per_minute, refill)).run())
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
