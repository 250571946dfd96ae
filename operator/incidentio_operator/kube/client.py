"""Our own Kubernetes API calls (reading Secrets, patching objects and their status, posting Events).

kopf watches; this client writes. It authenticates with the same connection info (kopf's
``ConnectionInfo``) that kopf's login produced, so it works wherever kopf works: in-cluster, with a
kubeconfig, or with the API stand-in.
"""

from __future__ import annotations

import asyncio
import datetime
import json as json_module
import logging
import ssl
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import aiohttp

from incidentio_operator.api.common import format_time

logger = logging.getLogger("incidentio_operator.kube.client")

MERGE_PATCH = "application/merge-patch+json"


class ConnectionInfo(Protocol):
    """Where the API server is and how to authenticate: what kopf's ``ConnectionInfo`` provides."""

    @property
    def server(self) -> str: ...

    @property
    def insecure(self) -> bool | None: ...

    def as_ssl_context(self) -> ssl.SSLContext: ...

    def as_http_headers(self) -> Mapping[str, str]: ...


class KubeError(Exception):
    """A Kubernetes API call failed; ``status`` is the HTTP status (None when there was no answer)."""

    def __init__(self, status: int | None, reason: str, message: str) -> None:
        super().__init__(f"Kubernetes API {status or 'unreachable'} {reason}: {message}")
        self.status = status
        self.reason = reason

    @property
    def conflict(self) -> bool:
        return self.status == 409

    @property
    def not_found(self) -> bool:
        return self.status == 404


def resource_path(api_version: str, plural: str, namespace: str | None, name: str | None = None) -> str:
    base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
    path = f"{base}/namespaces/{namespace}/{plural}" if namespace else f"{base}/{plural}"
    return f"{path}/{name}" if name else path


class KubeClient:
    """A small async client for the handful of calls the operator makes itself.

    It runs on aiohttp, like kopf: under thousands of status patches httpx's connection pool
    bookkeeping cost more CPU than the requests themselves.
    """

    def __init__(
        self,
        login: Callable[[], ConnectionInfo | None],
        *,
        timeout: float = 30.0,
        max_connections: int = 50,
    ) -> None:
        self._login = login
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None
        self._server = ""
        self._lock = asyncio.Lock()

    async def _client(self, refresh: bool = False) -> tuple[aiohttp.ClientSession, str]:
        async with self._lock:
            if self._session is not None and not refresh:
                return self._session, self._server
            info = await asyncio.to_thread(self._login)
            if info is None:
                raise KubeError(None, "LoginFailed", "no Kubernetes credentials found (in-cluster or kubeconfig)")
            old = self._session
            ssl: Any = None
            if info.server.startswith("https"):
                ssl = False if info.insecure else info.as_ssl_context()
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, ssl=ssl),
                headers={**info.as_http_headers(), "User-Agent": "incidentio-operator"},
                timeout=self._timeout,
            )
            self._server = info.server.rstrip("/")
            if old is not None:
                await old.close()
            return self._session, self._server

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self, method: str, path: str, *, json: Any = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        for attempt in range(2):
            session, server = await self._client(refresh=attempt > 0)
            try:
                async with session.request(method, server + path, json=json, headers=headers) as response:
                    status, reason = response.status, response.reason or ""
                    content = await response.read()
            except (aiohttp.ClientError, TimeoutError) as exc:
                raise KubeError(None, type(exc).__name__, str(exc) or "no answer") from None
            if status == 401 and attempt == 0:
                continue  # credentials rotated (e.g. a projected service-account token): log in again
            if status >= 400:
                try:
                    body = json_module.loads(content)
                except ValueError:
                    body = {}
                body = body if isinstance(body, dict) else {}
                raise KubeError(
                    status,
                    str(body.get("reason") or reason),
                    str(body.get("message") or content[:200].decode(errors="replace")),
                )
            return json_module.loads(content) if content else None
        raise KubeError(401, "Unauthorized", "the Kubernetes API refused the operator's credentials")

    async def get(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            result: dict[str, Any] = await self.request("GET", resource_path(api_version, plural, namespace, name))
        except KubeError as exc:
            if exc.not_found:
                return None
            raise
        return result

    async def list(self, api_version: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        token = ""
        while True:
            path = resource_path(api_version, plural, namespace) + "?limit=500"
            if token:
                path += f"&continue={token}"
            page = await self.request("GET", path)
            items.extend(page.get("items") or [])
            token = (page.get("metadata") or {}).get("continue") or ""
            if not token:
                return items

    async def patch(
        self,
        api_version: str,
        plural: str,
        namespace: str | None,
        name: str,
        patch: Mapping[str, Any],
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        path = resource_path(api_version, plural, namespace, name)
        if subresource:
            path += f"/{subresource}"
        result: dict[str, Any] = await self.request("PATCH", path, json=patch, headers={"Content-Type": MERGE_PATCH})
        return result

    async def delete(
        self, api_version: str, plural: str, namespace: str | None, name: str, *, preconditions: Mapping[str, str]
    ) -> None:
        """DELETE the object only while it is the one named by ``preconditions`` (DeleteOptions: uid,
        resourceVersion); KubeError 409 when it changed since, 404 when it is gone."""
        body = {"apiVersion": "v1", "kind": "DeleteOptions", "preconditions": dict(preconditions)}
        await self.request("DELETE", resource_path(api_version, plural, namespace, name), json=body)

    async def post_event(
        self,
        involved: Mapping[str, Any],
        *,
        type_: str,
        reason: str,
        message: str,
        now: datetime.datetime,
    ) -> None:
        meta = involved.get("metadata") or {}
        namespace = str(meta.get("namespace") or "default")
        stamp = format_time(now)
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta.get('name')}.", "namespace": namespace},
            "involvedObject": {
                "apiVersion": involved.get("apiVersion"),
                "kind": involved.get("kind"),
                "name": meta.get("name"),
                "namespace": namespace,
                "uid": meta.get("uid"),
            },
            "type": type_,
            "reason": reason,
            "message": message[:1024],
            "source": {"component": "incidentio-operator"},
            "reportingComponent": "alerting.armor.dev/incidentio-operator",
            "reportingInstance": "incidentio-operator",
            "firstTimestamp": stamp,
            "lastTimestamp": stamp,
            "count": 1,
        }
        await self.request("POST", resource_path("v1", "events", namespace), json=event)
