"""One bench cluster: the e2e harness's stand-in and simulator, a team set up in them, and a load generator."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx
from tests.e2e import objects
from tests.harness import DEMO_KEY, FULL_ROLES, Environment, wait_for

from bench.process import OperatorProcess
from incidentio_operator.simulator import ApiKeyConfig, RecordedRequest, SimulatorConfig

NS = "bench"
DESTINATION = "incidentio"
RULE = "all-schema-changes"
ALERTS = "dataalerts"
ALERTS_PATH = f"/apis/{objects.GV}/namespaces/{NS}/{ALERTS}"
# Marks the bench's own requests in the stand-in's log, so they are never counted as the operator's.
BENCH_MANAGER = "fieldManager=bench"
MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}


class Cluster:
    """An `Environment` with one namespace, Secret, destination and rule, and the operator as a measured process."""

    def __init__(self, workdir: Path, *, rate_limit_per_minute: int | None = None, refill_per_second: float = 20.0):
        workdir.mkdir(parents=True, exist_ok=True)
        config = SimulatorConfig(
            keys={DEMO_KEY: ApiKeyConfig(name="demo", roles=FULL_ROLES)},
            rate_limit_per_minute=rate_limit_per_minute,
            refill_per_second=refill_per_second,
        )
        self.env = Environment(workdir, config)
        self.workdir = workdir
        self.operator: OperatorProcess | None = None
        # The simulator stamps requests with time.monotonic(), the stand-in with time.time(); both run in
        # this process, so one offset taken now maps the first onto the second.
        self.monotonic_to_wall = time.time() - time.monotonic()

    def setup_team(self) -> None:
        client = self.env.client
        client.apply(objects.namespace(NS))
        client.apply(objects.secret(DEMO_KEY, ns=NS))
        client.apply(objects.destination(self.env.sim.url, DESTINATION, NS))
        client.apply(objects.rule(RULE, [DESTINATION], NS, eventTypes=["schema_change"]))

    def start_operator(self, *args: str) -> OperatorProcess:
        self.operator = OperatorProcess(self.env.kubeconfig, self.workdir / "operator.log", args)
        return self.operator

    def wait_team_ready(self, timeout: float = 30.0) -> None:
        self.env.wait_ready("incidentiodestinations", NS, DESTINATION, timeout=timeout)
        self.env.wait_ready("alertrules", NS, RULE, timeout=timeout)

    def close(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        self.env.close()

    # ------------------------------------------------------------------ server-side logs

    def sim_wall(self, request: RecordedRequest) -> float:
        return request.at + self.monotonic_to_wall

    def sim_requests(self, operation: str | None = None, *, ok: bool | None = None) -> list[RecordedRequest]:
        return [
            r
            for r in self.env.sim.requests
            if (operation is None or r.operation == operation) and (ok is None or (r.status < 300) == ok)
        ]

    def operator_kube_calls(self, since: float = 0.0) -> list[Any]:
        """Every stand-in request but the bench's own, from wall time ``since``."""
        return [c for c in list(self.env.kube.requests) if c.at >= since and BENCH_MANAGER not in c.path]

    def bench_kube_calls(self, verb: str) -> list[Any]:
        return [c for c in list(self.env.kube.requests) if c.verb == verb and BENCH_MANAGER in c.path]

    def incident_alerts(self) -> dict[str, str]:
        """Incident ID → the name of the DataAlert it was opened for (the alert's title ends with its name)."""
        return {i["id"]: str(i["name"]).rsplit(" ", 1)[-1] for i in self.env.sim.incidents}

    def wait_incidents(self, *, opened: int | None = None, closed: int | None = None, timeout: float = 120.0) -> None:
        def done() -> bool:
            creates = {r.body["idempotency_key"] for r in self.sim_requests("create_incident", ok=True)}
            edits = {r.path for r in self.sim_requests("edit_incident", ok=True)}
            return (opened is None or len(creates) >= opened) and (closed is None or len(edits) >= closed)

        wait_for(done, timeout=timeout, what=f"{opened} incidents opened, {closed} closed")


def alert_names(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i:05d}" for i in range(count)]


def alert_body(name: str) -> dict[str, Any]:
    return objects.alert(name, NS)


async def _send(
    client: httpx.AsyncClient, limit: asyncio.Semaphore, method: str, path: str, body: Any, headers: dict[str, str]
) -> dict[str, Any]:
    async with limit:
        response = await client.request(method, path, content=json.dumps(body).encode(), headers=headers)
    if response.status_code >= 300:
        raise RuntimeError(f"{method} {path}: HTTP {response.status_code}: {response.text[:300]}")
    result: dict[str, Any] = response.json()
    return result


class Detector:
    """What a detector does, over HTTP: create DataAlerts and set their state, many at once."""

    def __init__(self, base_url: str, concurrency: int = 32) -> None:
        self.base_url = base_url
        self.concurrency = concurrency
        # Wall time each create was answered: the stand-in records a create without the object's name.
        self.created_at: dict[str, float] = {}

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": "Bearer bench", "Content-Type": "application/json"},
            timeout=60.0,
            limits=httpx.Limits(max_connections=self.concurrency),
        )

    async def _create(self, client: httpx.AsyncClient, limit: asyncio.Semaphore, name: str) -> dict[str, Any]:
        created = await _send(client, limit, "POST", f"{ALERTS_PATH}?{BENCH_MANAGER}", alert_body(name), {})
        self.created_at[name] = time.time()
        return created

    async def _resolve(self, client: httpx.AsyncClient, limit: asyncio.Semaphore, name: str) -> dict[str, Any]:
        patch = {"spec": {"state": "resolved"}}
        return await _send(client, limit, "PATCH", f"{ALERTS_PATH}/{name}?{BENCH_MANAGER}", patch, MERGE_PATCH)

    async def create_all(self, names: Sequence[str]) -> list[dict[str, Any]]:
        limit = asyncio.Semaphore(self.concurrency)
        async with self._client() as client:
            return list(await asyncio.gather(*(self._create(client, limit, name) for name in names)))

    async def resolve_all(self, names: Sequence[str]) -> None:
        limit = asyncio.Semaphore(self.concurrency)
        async with self._client() as client:
            await asyncio.gather(*(self._resolve(client, limit, name) for name in names))

    async def steady(self, names: Sequence[str], rate: float, resolve_after: float) -> None:
        """Create one alert every 1/rate seconds and resolve each ``resolve_after`` seconds after its creation.

        Open loop: arrivals keep their schedule whatever the operator does, so a slow operator shows up as
        latency instead of as a lower offered load.
        """
        limit = asyncio.Semaphore(self.concurrency)
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.1
        async with self._client() as client:

            async def one(index: int, name: str) -> None:
                await asyncio.sleep(max(0.0, start + index / rate - loop.time()))
                await self._create(client, limit, name)
                await asyncio.sleep(max(0.0, start + index / rate + resolve_after - loop.time()))
                await self._resolve(client, limit, name)

            await asyncio.gather(*(one(i, name) for i, name in enumerate(names)))
