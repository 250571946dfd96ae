"""The incident.io client's HTTP transport: httpx requests carried over an aiohttp connection pool.

httpx stays the client's interface (requests, responses, timeouts, errors); only the connection pool
underneath is aiohttp's. On loopback, httpcore spent about 1 ms of CPU per request against about
0.2 ms here, most of it checking every pooled connection on every request, and in a burst the
operator spends a large share of its CPU on incident.io calls.
"""

from __future__ import annotations

import ipaddress
import ssl
import urllib.request
from collections.abc import Mapping

import aiohttp
import certifi
import httpx

# Framing is aiohttp's to set from the body it sends; Host comes from the URL.
_FRAMING = frozenset({b"host", b"content-length", b"connection", b"transfer-encoding", b"keep-alive"})


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether NO_PROXY names the host: ``*``, the host, a domain it is in (``.svc`` or ``svc``), or its CIDR."""
    host = host.lower().rstrip(".")
    try:
        address: ipaddress.IPv4Address | ipaddress.IPv6Address | None = ipaddress.ip_address(host)
    except ValueError:
        address = None
    for entry in (e.strip().lower() for e in no_proxy.split(",")):
        if not entry:
            continue
        if entry == "*":
            return True
        if address is not None and "/" in entry:
            try:
                if address in ipaddress.ip_network(entry, strict=False):
                    return True
            except ValueError:
                pass
            continue
        domain = entry if address is not None else entry.split(":", 1)[0].lstrip(".")
        if host == domain or host.endswith("." + domain):
            return True
    return False


class AiohttpTransport(httpx.AsyncBaseTransport):
    """One aiohttp session per transport, opened on first use inside the running event loop.

    Proxies come from the environment as httpx would take them (HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and
    NO_PROXY, either case): httpx applies them only to its own transport, so this one does it itself.
    """

    def __init__(
        self, *, max_connections: int, keepalive_expiry: float = 5.0, proxies: Mapping[str, str] | None = None
    ) -> None:
        self._max_connections = max_connections
        self._keepalive_expiry = keepalive_expiry
        self._session: aiohttp.ClientSession | None = None
        self._proxies = dict(urllib.request.getproxies_environment() if proxies is None else proxies)
        self._bypass: dict[str, bool] = {}

    def _proxy_for(self, url: httpx.URL) -> str | None:
        proxy = self._proxies.get(url.scheme) or self._proxies.get("all")
        if not proxy:
            return None
        bypass = self._bypass.get(url.host)
        if bypass is None:
            bypass = self._bypass[url.host] = _bypassed(url.host, self._proxies.get("no", ""))
        return None if bypass else proxy

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector = aiohttp.TCPConnector(
                limit=self._max_connections,
                limit_per_host=0,
                keepalive_timeout=self._keepalive_expiry,
                # The same CA bundle httpx verifies against.
                ssl=ssl.create_default_context(cafile=certifi.where()),
            )
            # Bodies are handed to httpx as they arrived; httpx decodes them by their Content-Encoding.
            # Proxies from the environment are httpx's to apply (it mounts its own transport for them).
            self._session = aiohttp.ClientSession(connector=connector, auto_decompress=False, trust_env=False)
        return self._session

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        timeouts = request.extensions.get("timeout") or {}
        timeout = aiohttp.ClientTimeout(
            total=None,
            sock_connect=timeouts.get("connect"),
            sock_read=timeouts.get("read"),
        )
        headers = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in request.headers.raw]
        headers = [(name, value) for name, value in headers if name.lower().encode() not in _FRAMING]
        body = await request.aread()
        session = self._open()
        try:
            async with session.request(
                request.method,
                str(request.url),
                headers=headers,
                data=body or None,
                allow_redirects=False,
                timeout=timeout,
                proxy=self._proxy_for(request.url),
                skip_auto_headers=("Accept-Encoding", "User-Agent", "Content-Type"),
            ) as response:
                content = await response.read()
                return httpx.Response(
                    response.status,
                    headers=[(bytes(name), bytes(value)) for name, value in response.raw_headers],
                    content=content,
                    request=request,
                )
        except TimeoutError as exc:
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                raise httpx.ConnectTimeout("timed out connecting", request=request) from exc
            raise httpx.ReadTimeout("timed out waiting for the response", request=request) from exc
        except aiohttp.ClientConnectorError as exc:
            raise httpx.ConnectError(f"cannot connect: {exc.os_error}", request=request) from exc
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError, aiohttp.ClientResponseError) as exc:
            raise httpx.RemoteProtocolError("connection lost before a complete response", request=request) from exc
        except aiohttp.ClientOSError as exc:
            raise httpx.ReadError(f"connection error: {exc.strerror or type(exc).__name__}", request=request) from exc
        except aiohttp.ClientError as exc:
            raise httpx.TransportError(f"transport error ({type(exc).__name__})", request=request) from exc

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
