"""The incident.io client's aiohttp transport, against raw loopback servers that misbehave on purpose."""

from __future__ import annotations

import asyncio
import gzip
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

import httpx
import pytest

from incidentio_operator.incidentio import Account, ApiKey, IncidentIoClient, Unreachable
from incidentio_operator.incidentio.transport import AiohttpTransport, _bypassed

pytestmark = pytest.mark.timeout(30)

SECRET = "sk-live-transport-Qw3Er5Ty7"
IDENTITY = {"identity": {"name": "ci", "roles": ["viewer"], "dashboard_url": "https://app.incident.io/x"}}

Answer = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@dataclass
class RawServer:
    url: str = ""
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0


@asynccontextmanager
async def raw_server(answer: Answer) -> AsyncIterator[RawServer]:
    """A TCP server on loopback; `answer` writes each reply (or closes). Keeps every request as received."""
    raw = RawServer()
    heads = raw.requests

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raw.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                heads.append(head)
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length")
                    ),
                    0,
                )
                heads[-1] += await reader.readexactly(length)
                await answer(reader, writer)
                if writer.is_closing():
                    return
        except (asyncio.IncompleteReadError, ConnectionResetError):
            return
        finally:
            writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    raw.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    try:
        yield raw
    finally:
        server.close()
        await server.wait_closed()


def response(status: int, body: bytes, *headers: str) -> bytes:
    lines = [f"HTTP/1.1 {status} X", f"Content-Length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_a_request_goes_out_as_httpx_built_it_with_one_host_and_the_body_intact() -> None:
    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(response(200, json.dumps(IDENTITY).encode(), "Content-Type: application/json"))
        await writer.drain()

    async with raw_server(answer) as server, httpx.AsyncClient(transport=AiohttpTransport(max_connections=2)) as http:
        got = await http.post(
            f"{server.url}/v2/incidents", content=b'{"a": 1}', headers={"Authorization": "Bearer t", "X-Extra": "yes"}
        )

    assert got.status_code == 200 and got.json() == IDENTITY
    head, _, body = server.requests[0].partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert lines[0] == "POST /v2/incidents HTTP/1.1"
    names = [line.split(":", 1)[0].lower() for line in lines[1:]]
    assert names.count("host") == 1 and names.count("content-length") == 1
    headers = {line.split(":", 1)[0].lower(): line.split(":", 1)[1].strip() for line in lines[1:]}
    assert headers["authorization"] == "Bearer t" and headers["x-extra"] == "yes"
    assert body == b'{"a": 1}'


async def test_a_gzip_body_is_decoded_once() -> None:
    payload = json.dumps(IDENTITY).encode()

    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(response(200, gzip.compress(payload), "Content-Type: application/json", "Content-Encoding: gzip"))
        await writer.drain()

    async with raw_server(answer) as server, IncidentIoClient() as client:
        identity = await client.identity(Account(server.url, ApiKey(SECRET)))

    assert identity.name == "ci"


async def test_connections_are_kept_alive_and_reused() -> None:
    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(response(200, json.dumps(IDENTITY).encode(), "Content-Type: application/json"))
        await writer.drain()

    async with raw_server(answer) as server, IncidentIoClient() as client:
        account = Account(server.url, ApiKey(SECRET))
        for _ in range(5):
            await client.identity(account)

    assert (len(server.requests), server.connections) == (5, 1)


async def test_a_connection_closed_before_the_response_is_unreachable_and_retried() -> None:
    calls, always = 0, False

    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal calls
        calls += 1
        if calls == 1 or always:
            writer.close()
            return
        writer.write(response(200, json.dumps(IDENTITY).encode(), "Content-Type: application/json"))
        await writer.drain()

    async with raw_server(answer) as server, IncidentIoClient(backoff_base=0.01) as client:
        identity = await client.identity(Account(server.url, ApiKey(SECRET)))
    assert identity.name == "ci" and calls == 2

    always = True
    async with raw_server(answer) as server, IncidentIoClient(max_attempts=2, backoff_base=0.01) as client:
        with pytest.raises(Unreachable) as caught:
            await client.identity(Account(server.url, ApiKey(SECRET)))
    assert str(caught.value) == "incident.io unreachable: connection lost before a response"
    assert SECRET not in repr(caught.value) and caught.value.__cause__ is None


async def test_a_redirect_is_not_followed() -> None:
    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(response(302, b"", "Location: http://elsewhere.example/v1/identity"))
        await writer.drain()

    async with raw_server(answer) as server, httpx.AsyncClient(transport=AiohttpTransport(max_connections=1)) as http:
        got = await http.get(f"{server.url}/v1/identity", headers={"Authorization": f"Bearer {SECRET}"})

    assert got.status_code == 302 and len(server.requests) == 1, (
        "the Authorization header must not travel to the Location"
    )


async def test_the_session_opens_in_the_loop_that_uses_it_and_closes_with_the_client() -> None:
    transport = AiohttpTransport(max_connections=1)
    assert transport._session is None, "nothing is opened before a request, outside any event loop"

    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(response(204, b""))
        await writer.drain()

    async with raw_server(answer) as server:
        async with httpx.AsyncClient(transport=transport) as http:
            assert (await http.get(server.url)).status_code == 204
            assert transport._session is not None and not transport._session.closed
    assert transport._session is None


async def test_a_proxy_from_the_environment_carries_the_request_unless_no_proxy_names_the_host() -> None:
    async def answer(_: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.write(response(200, json.dumps(IDENTITY).encode(), "Content-Type: application/json"))
        await writer.drain()

    async with raw_server(answer) as proxy, raw_server(answer) as direct:
        proxies = {"http": proxy.url, "no": "localhost,127.0.0.1"}
        async with httpx.AsyncClient(transport=AiohttpTransport(max_connections=1, proxies=proxies)) as http:
            through = await http.get("http://api.incident.invalid/v1/identity")
            around = await http.get(f"{direct.url}/v1/identity")

    assert through.status_code == around.status_code == 200
    assert proxy.requests[0].startswith(b"GET http://api.incident.invalid/v1/identity HTTP/1.1\r\n")
    assert len(proxy.requests) == 1 and len(direct.requests) == 1, "NO_PROXY sends 127.0.0.1 straight there"


def test_proxies_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", ".svc,.cluster.local")
    transport = AiohttpTransport(max_connections=1)
    assert transport._proxy_for(httpx.URL("https://api.incident.io/v1/identity")) == "http://proxy.internal:3128"
    assert transport._proxy_for(httpx.URL("https://sim.armor.svc/v1/identity")) is None
    assert transport._proxy_for(httpx.URL("http://api.incident.io/v1/identity")) is None, "no HTTP_PROXY set"


@pytest.mark.parametrize(
    ("host", "no_proxy", "bypassed"),
    [
        ("api.incident.io", "", False),
        ("api.incident.io", "*", True),
        ("api.incident.io", "incident.io", True),
        ("api.incident.io", ".incident.io", True),
        ("notincident.io", "incident.io", False),
        ("sim.armor.svc", "localhost, .svc", True),
        ("10.96.0.12", "10.0.0.0/8", True),
        ("192.168.1.5", "10.0.0.0/8", False),
        ("127.0.0.1", "127.0.0.1", True),
        ("api.incident.io", "api.incident.io:443", True),
    ],
)
def test_no_proxy_matching(host: str, no_proxy: str, bypassed: bool) -> None:
    assert _bypassed(host, no_proxy) is bypassed
