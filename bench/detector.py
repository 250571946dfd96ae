"""The detector: what creates DataAlerts, sets their state and rewrites them, in bursts or at a steady rate, over HTTP.

A burst runs as its own process (``python -m bench.detector create|resolve URL PREFIX COUNT``), as the floor
does: in the bench process it would take the GIL from the stand-in and the simulator it is measuring through.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import httpx

from bench.cluster import BENCH_MANAGER, MERGE_PATCH, NS, alert_body, alert_names, alerts_path
from incidentio_operator.incidentio.transport import AiohttpTransport


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

    def __init__(self, base_url: str, concurrency: int = 32, namespace: str = NS) -> None:
        self.base_url = base_url
        self.concurrency = concurrency
        self.namespace = namespace
        # Wall time each create was answered: the stand-in records a create without the object's name.
        self.created_at: dict[str, float] = {}

    def _client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(
            base_url=self.base_url,
            headers={"Authorization": "Bearer bench", "Content-Type": "application/json"},
            timeout=60.0,
            limits=httpx.Limits(max_connections=self.concurrency),
            # The load generator should cost the machine as little as it can: it stands for a detector
            # running elsewhere, and httpx's own pool costs about 1 ms of CPU per request.
            transport=AiohttpTransport(max_connections=self.concurrency),
        )

    async def _create(
        self, client: httpx.AsyncClient, limit: asyncio.Semaphore, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        namespace = namespace or self.namespace
        body = alert_body(name, namespace)
        created = await _send(client, limit, "POST", f"{alerts_path(namespace)}?{BENCH_MANAGER}", body, {})
        self.created_at[name] = time.time()
        return created

    async def _resolve(
        self, client: httpx.AsyncClient, limit: asyncio.Semaphore, name: str, namespace: str | None = None
    ) -> dict[str, Any]:
        path = f"{alerts_path(namespace or self.namespace)}/{name}?{BENCH_MANAGER}"
        return await _send(client, limit, "PATCH", path, {"spec": {"state": "resolved"}}, MERGE_PATCH)

    async def create_all(self, names: Sequence[str], namespaces: Sequence[str] = ()) -> None:
        """Create the alerts in each namespace (or the detector's own), the namespaces' turns interleaved."""
        limit = asyncio.Semaphore(self.concurrency)
        async with self._client() as client:
            await asyncio.gather(*(self._create(client, limit, n, ns) for n, ns in _across(names, namespaces)))

    async def resolve_all(self, names: Sequence[str], namespaces: Sequence[str] = ()) -> None:
        limit = asyncio.Semaphore(self.concurrency)
        async with self._client() as client:
            await asyncio.gather(*(self._resolve(client, limit, n, ns) for n, ns in _across(names, namespaces)))

    async def revise_all(self, names: Sequence[str], revisions: Sequence[dict[str, Any]], pace: float) -> None:
        """Apply ``revisions`` (merge patches) to every alert, the next one each ``pace`` seconds, every alert at
        once: a detector rewriting its alerts as it learns more."""
        limit = asyncio.Semaphore(self.concurrency)
        loop = asyncio.get_running_loop()
        start = loop.time() + 0.1
        async with self._client() as client:

            async def one(name: str) -> None:
                path = f"{alerts_path(self.namespace)}/{name}?{BENCH_MANAGER}"
                for index, revision in enumerate(revisions):
                    await asyncio.sleep(max(0.0, start + index * pace - loop.time()))
                    await _send(client, limit, "PATCH", path, revision, MERGE_PATCH)

            await asyncio.gather(*(one(name) for name in names))

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


def _across(names: Sequence[str], namespaces: Sequence[str]) -> list[tuple[str, str | None]]:
    """Every (name, namespace) pair, one of each namespace in turn, so no namespace's alerts all come first."""
    if not namespaces:
        return [(name, None) for name in names]
    return [(tenant_alert(ns, name), ns) for name in names for ns in namespaces]


def tenant_alert(namespace: str, name: str) -> str:
    """A tenant's alert name: unique across namespaces, as the incident titles (which end with it) must be."""
    return f"{namespace}-{name}"


def burst(url: str, action: str, prefix: str, count: int, namespaces: Sequence[str] = ()) -> None:
    """Create (or resolve) ``count`` alerts named by ``alert_names(prefix, count)`` from a separate process,
    in each of ``namespaces`` (named by ``tenant_alert``) or else in the bench's own namespace."""
    command = [sys.executable, "-m", "bench.detector", action, url, prefix, str(count), ",".join(namespaces)]
    subprocess.run(command, check=True, timeout=600, cwd=Path(__file__).resolve().parents[1])


def main(argv: list[str]) -> int:
    action, url, prefix, count = argv[0], argv[1], argv[2], int(argv[3])
    namespaces = [ns for ns in (argv[4] if len(argv) > 4 else "").split(",") if ns]
    detector, names = Detector(url), alert_names(prefix, count)
    if action == "create":
        asyncio.run(detector.create_all(names, namespaces))
    elif action == "resolve":
        asyncio.run(detector.resolve_all(names, namespaces))
    else:
        print(f"unknown action {action!r}: create or resolve", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
