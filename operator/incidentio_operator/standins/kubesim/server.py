"""The HTTP face of the Kubernetes API stand-in: routing, discovery, watch streams, faults and accounting."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from aiohttp import web

from . import errors, resources
from .errors import ApiError
from .kubeconfig import write_kubeconfig
from .selectors import field_selector, label_selector
from .store import ObjectValidatorLike, Store, ValidatorFactory, Watcher

_WATCH_POLL = 1.0
_CREATED_NAME = web.RequestKey("kubesim.created_name", str)
_STREAM_ERRORS = (ConnectionError, RuntimeError)


def default_validator_factory(crd: Mapping[str, Any]) -> ObjectValidatorLike:
    """Validate custom objects with the project's schema module, as the real server uses the CRD schema."""
    # Imported lazily: the schema module compiles CEL and JSON schemas, which plain CRUD users never need.
    from incidentio_operator.offline.schema import ObjectValidator

    return ObjectValidator.from_crd(crd)


@dataclass(frozen=True)
class RecordedCall:
    """One request the stand-in answered; never its body (Secrets travel in bodies)."""

    method: str
    path: str
    verb: str
    resource: str | None
    subresource: str | None
    namespace: str | None
    name: str | None
    status: int
    at: float


@dataclass
class _Fault:
    remaining: int
    verb: str | None
    resource: str | None
    subresource: str | None
    status: int | None = None
    delay: float = 0.0

    def matches(self, verb: str, resource: str, subresource: str | None) -> bool:
        return (
            self.remaining > 0
            and (self.verb is None or self.verb == verb)
            and (self.resource is None or self.resource == resource)
            and (self.subresource is None or self.subresource == (subresource or ""))
        )


@dataclass(frozen=True)
class _Target:
    rt: resources.ResourceType
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None
    verb: str


class KubeApiStandIn:
    """A Kubernetes API server on loopback with the semantics an operator relies on (see the package docs)."""

    def __init__(
        self,
        *,
        crds: Sequence[Mapping[str, Any]] = (),
        validator_factory: ValidatorFactory | None = default_validator_factory,
        history_size: int = 10000,
        bookmark_interval: float = 30.0,
    ) -> None:
        self._store = Store(crds=crds, validator_factory=validator_factory, history_size=history_size)
        self._bookmark_interval = bookmark_interval
        self._faults: list[_Fault] = []
        self._faults_lock = threading.Lock()
        self.requests: list[RecordedCall] = []
        self._runner: web.AppRunner | None = None
        self._stopping = asyncio.Event()
        self._held = 0
        self._url = ""

    # Lifecycle -----------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._stopping.clear()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = cast(asyncio.Server, site._server)
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        self._url = f"http://{bound_host}:{bound_port}"

    async def stop(self) -> None:
        """Stop serving; open watch streams are ended first so that shutdown never waits on them."""
        self._stopping.set()
        for watcher in self._store.watchers():
            watcher.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def url(self) -> str:
        if not self._url:
            raise RuntimeError("the stand-in is not started")
        return self._url

    def write_kubeconfig(self, path: Path, *, namespace: str = "default") -> Path:
        """A kubeconfig for kopf, the kubernetes client and kubectl (see `kubeconfig.write_kubeconfig`)."""
        return write_kubeconfig(path, server=self.url, namespace=namespace)

    # Direct access for fixtures --------------------------------------------------------------------

    def put_object(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create or replace (status included), with every rule and watch event of an API write."""
        rt = self._store.type_for(obj.get("apiVersion", ""), obj.get("kind", ""))
        meta = obj.get("metadata") or {}
        namespace = meta.get("namespace") if rt.namespaced else None
        body = {**obj, "metadata": {k: v for k, v in meta.items() if k != "resourceVersion"}}
        existing = self._store.find(rt, namespace, meta.get("name", ""))
        if existing is None:
            stored = self._store.create(rt, namespace, body)
        else:
            stored = self._store.update(rt, namespace, existing["metadata"]["name"], body, require_rv=False)
        if rt.has_status and "status" in obj and stored["metadata"].get("name"):
            stored = self._store.update(
                rt, namespace, stored["metadata"]["name"], body, subresource="status", require_rv=False
            )
        return copy.deepcopy(stored)

    def get_object(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        rt = self._store.type_for(api_version, plural)
        obj = self._store.find(rt, namespace if rt.namespaced else None, name)
        return None if obj is None else copy.deepcopy(obj)

    def list_objects(self, api_version: str, plural: str, namespace: str | None = None) -> list[dict[str, Any]]:
        rt = self._store.type_for(api_version, plural)
        return copy.deepcopy(self._store.list(rt, namespace if rt.namespaced else None).items)

    @property
    def resource_version(self) -> str:
        """The current global resourceVersion (the etcd revision)."""
        return self._store.resource_version

    # Faults and accounting -----------------------------------------------------------------------

    def drop_watches(self, resource: str | None = None) -> None:
        """Cut open watch streams mid-flight (no clean end of the chunked body); clients must reconnect."""
        for watcher in self._store.watchers(resource):
            watcher.drop()

    def open_watches(self, resource: str | None = None) -> int:
        """How many watch streams are open now (of one resource, by plural, or of all)."""
        return len(list(self._store.watchers(resource)))

    def fail_next(
        self,
        count: int,
        *,
        status: int,
        verb: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
    ) -> None:
        """Answer the next `count` matching requests with `status` without applying them.

        `subresource=""` matches only the main resource; None matches both.
        """
        with self._faults_lock:
            self._faults.append(_Fault(count, verb, resource, subresource, status=status))

    def delay_next(
        self,
        count: int,
        seconds: float,
        *,
        verb: str | None = None,
        resource: str | None = None,
        subresource: str | None = None,
    ) -> None:
        """Hold the next `count` matching requests for `seconds` before serving them normally."""
        with self._faults_lock:
            self._faults.append(_Fault(count, verb, resource, subresource, delay=seconds))

    @property
    def held_requests(self) -> int:
        """How many requests `delay_next` is holding right now."""
        return self._held

    def count(self, *, verb: str | None = None, resource: str | None = None, subresource: str | None = None) -> int:
        """How many recorded requests match; `subresource=""` counts only requests to the main resource."""
        return sum(
            1
            for call in list(self.requests)
            if (verb is None or call.verb == verb)
            and (resource is None or call.resource == resource)
            and (subresource is None or (call.subresource or "") == subresource)
        )

    def clear_requests(self) -> None:
        self.requests.clear()

    def _take_faults(self, target: _Target) -> tuple[int | None, float]:
        status, delay = None, 0.0
        with self._faults_lock:
            for kind in ("delay", "status"):
                for fault in self._faults:
                    is_kind = fault.status is not None if kind == "status" else fault.delay > 0
                    if is_kind and fault.matches(target.verb, target.rt.plural, target.subresource):
                        fault.remaining -= 1
                        if kind == "status":
                            status = fault.status
                        else:
                            delay = fault.delay
                        break
            self._faults = [f for f in self._faults if f.remaining > 0]
        return status, delay

    # HTTP ----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        target: _Target | None = None
        try:
            discovery = self._discovery(request)
            if discovery is not None:
                response: web.StreamResponse = _json(discovery)
            else:
                target = self._route(request)
                status, delay = self._take_faults(target)
                if delay:
                    # A held request is released at once when the stand-in stops, so stop() never waits on it.
                    self._held += 1
                    try:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stopping.wait(), delay)
                    finally:
                        self._held -= 1
                if status == 410 and target.verb == "watch":
                    response = await self._watch(request, target, failure=_injected(status, target))
                elif status is not None:
                    raise _injected(status, target)
                else:
                    response = await self._serve(request, target)
        except ApiError as exc:
            response = _json(exc.to_status(), exc.status)
            if exc.status == 429:
                response.headers["Retry-After"] = "1"
        # An open watch stream was recorded when it started, so tests can wait for it to be there.
        if not (target is not None and target.verb == "watch" and response.prepared):
            self._record(request, target, response.status)
        return response

    def _record(self, request: web.Request, target: _Target | None, status: int) -> None:
        self.requests.append(
            RecordedCall(
                method=request.method,
                path=request.path_qs,
                verb=target.verb if target else "get",
                resource=target.rt.plural if target else None,
                subresource=target.subresource if target else None,
                namespace=target.namespace if target else None,
                name=request.get(_CREATED_NAME) or (target.name if target else None),
                status=status,
                at=time.time(),
            )
        )

    def _discovery(self, request: web.Request) -> dict[str, Any] | None:
        parts = [p for p in request.path.split("/") if p]
        types = self._store.types()
        doc: dict[str, Any] | None
        if parts == ["version"]:
            doc = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-kubesim", "platform": "linux/amd64"}
        elif parts == ["api"]:
            doc = resources.api_versions_doc()
        elif parts == ["apis"]:
            doc = resources.group_list_doc(types)
        elif len(parts) == 2 and parts[0] == "apis":
            doc = resources.group_doc(parts[1], types)
        elif len(parts) == 2 and parts[0] == "api":
            doc = resources.resource_list_doc("", parts[1], types)
        elif len(parts) == 3 and parts[0] == "apis":
            doc = resources.resource_list_doc(parts[1], parts[2], types)
        else:
            return None
        if doc is None:
            raise errors.no_such_path()
        if request.method != "GET":
            raise errors.method_not_allowed(request.method)
        return doc

    def _route(self, request: web.Request) -> _Target:
        parts = [p for p in request.path.split("/") if p]
        if len(parts) >= 3 and parts[0] == "api":
            group, version, rest = "", parts[1], parts[2:]
        elif len(parts) >= 4 and parts[0] == "apis":
            group, version, rest = parts[1], parts[2], parts[3:]
        else:
            raise errors.no_such_path()
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] == "status"):
            namespace, rest = rest[1], rest[2:]
        rt = self._store.find_type(group, version, rest[0])
        if rt is None or len(rest) > 3 or (namespace is not None and not rt.namespaced):
            raise errors.no_such_path()
        name = rest[1] if len(rest) > 1 else None
        subresource = rest[2] if len(rest) > 2 else None
        if subresource is not None and (subresource != "status" or not rt.has_status):
            raise errors.no_such_path()
        if name is not None and rt.namespaced and namespace is None:
            raise errors.no_such_path()
        verb = _verb(request, name)
        if verb not in rt.verbs or (subresource is not None and verb not in resources.SUBRESOURCE_VERBS):
            raise errors.method_not_allowed(request.method)
        if verb == "create" and rt.namespaced and namespace is None:
            raise errors.method_not_allowed(request.method)
        return _Target(rt, version, namespace, name, subresource, verb)

    async def _serve(self, request: web.Request, target: _Target) -> web.StreamResponse:
        store, rt, ns, name = self._store, target.rt, target.namespace, target.name
        if target.verb == "watch":
            return await self._watch(request, target)
        if target.verb == "list":
            return _json(self._list(request, target))
        if name is None:
            if target.verb == "create":
                created = store.create(rt, ns, await _body(request))
                # Creates have no name in the URL (generateName); the log names what was created.
                request[_CREATED_NAME] = created["metadata"]["name"]
                return _json(self._present(created, target), 201)
            return _json(self._delete_collection(request, target, await _body(request, optional=True)))
        if target.verb == "get":
            return _json(self._present(store.get(rt, ns, name), target))
        if target.verb == "update":
            updated = store.update(rt, ns, name, await _body(request), subresource=target.subresource)
            return _json(self._present(updated, target))
        if target.verb == "patch":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            patched = store.patch(rt, ns, name, content_type, await _body(request), subresource=target.subresource)
            return _json(self._present(patched, target))
        return _json(self._present(store.delete(rt, ns, name, await _body(request, optional=True)), target))

    def _present(self, obj: dict[str, Any], target: _Target) -> dict[str, Any]:
        api_version = target.rt.api_version(target.version)
        return obj if obj.get("apiVersion") == api_version else {**obj, "apiVersion": api_version}

    def _list(self, request: web.Request, target: _Target) -> dict[str, Any]:
        query = request.query
        try:
            limit = int(query.get("limit") or 0)
        except ValueError as exc:
            raise errors.bad_request(f"invalid limit: {query.get('limit')!r}") from exc
        page = self._store.list(
            target.rt,
            target.namespace,
            labels=label_selector(query.get("labelSelector")),
            fields=field_selector(query.get("fieldSelector"), target.rt.plural),
            limit=limit,
            continue_token=query.get("continue", ""),
        )
        metadata: dict[str, Any] = {"resourceVersion": page.resource_version}
        if page.continue_token:
            metadata["continue"] = page.continue_token
        if page.remaining is not None:
            metadata["remainingItemCount"] = page.remaining
        return {
            "apiVersion": target.rt.api_version(target.version),
            "kind": f"{target.rt.kind}List",
            "metadata": metadata,
            "items": [self._present(item, target) for item in page.items],
        }

    def _delete_collection(self, request: web.Request, target: _Target, options: Any) -> dict[str, Any]:
        listing = self._list(request, target)
        deleted = [
            self._present(
                self._store.delete(target.rt, item["metadata"].get("namespace"), item["metadata"]["name"], options),
                target,
            )
            for item in listing["items"]
        ]
        return {**listing, "items": deleted, "metadata": {"resourceVersion": self._store.resource_version}}

    async def _watch(
        self, request: web.Request, target: _Target, failure: ApiError | None = None
    ) -> web.StreamResponse:
        """Stream events; an expired resourceVersion is an ERROR event in a 200 stream, as on a real server."""
        query = request.query
        watcher = Watcher(
            target.rt,
            target.version,
            target.namespace,
            label_selector(query.get("labelSelector")),
            field_selector(query.get("fieldSelector"), target.rt.plural),
        )
        bookmarks = query.get("allowWatchBookmarks") in ("true", "1")
        initial = query.get("sendInitialEvents") in ("true", "1")
        try:
            timeout = float(query["timeoutSeconds"]) if "timeoutSeconds" in query else None
        except ValueError as exc:
            raise errors.bad_request(f"invalid timeoutSeconds: {query['timeoutSeconds']!r}") from exc
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        self._record(request, target, response.status)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        failure = failure or self._store.open_watch(watcher, query.get("resourceVersion"), initial)
        try:
            if failure is not None:
                line = json.dumps({"type": "ERROR", "object": failure.to_status()}).encode() + b"\n"
                await response.write(line)
                await response.write_eof()
                return response
            # With sendInitialEvents, a bookmark marks where the current state ends and live events begin.
            initial_left = watcher.initial_count if initial else None
            last_bookmark = loop.time()
            while True:
                chunk: list[bytes] = []
                while watcher.pending and initial_left != 0:
                    event_type, event = watcher.pending.popleft()
                    chunk.append(event.line(event_type, watcher.api_version))
                    if initial_left is not None:
                        initial_left -= 1
                if initial_left == 0:
                    if bookmarks:
                        chunk.append(self._bookmark(watcher, watcher.initial_rv, initial_end=True))
                    initial_left = None
                if chunk:
                    await response.write(b"".join(chunk))
                if watcher.dropped:
                    if request.transport is not None:
                        request.transport.abort()
                    return response
                now = loop.time()
                if watcher.closed or (deadline is not None and now >= deadline):
                    break
                if request.transport is None or request.transport.is_closing():
                    return response
                if bookmarks and now - last_bookmark >= self._bookmark_interval:
                    rv = self._store.quiet_rv(watcher)
                    if rv is not None:
                        await response.write(self._bookmark(watcher, rv))
                        last_bookmark = now
                wait = min(_WATCH_POLL, self._bookmark_interval - (now - last_bookmark) if bookmarks else _WATCH_POLL)
                if deadline is not None:
                    wait = min(wait, deadline - now)
                await watcher.wait(max(wait, 0.0))
            await response.write_eof()
        except _STREAM_ERRORS:
            pass
        finally:
            self._store.close_watch(watcher)
        return response

    def _bookmark(self, watcher: Watcher, rv: str, *, initial_end: bool = False) -> bytes:
        metadata: dict[str, Any] = {"resourceVersion": rv}
        if initial_end:
            metadata["annotations"] = {"k8s.io/initial-events-end": "true"}
        obj = {"kind": watcher.rt.kind, "apiVersion": watcher.api_version, "metadata": metadata}
        return json.dumps({"type": "BOOKMARK", "object": obj}).encode() + b"\n"


def _verb(request: web.Request, name: str | None) -> str:
    method = request.method
    if method == "GET":
        if name is not None:
            return "get"
        return "watch" if request.query.get("watch") in ("true", "1") else "list"
    if method == "POST" and name is None:
        return "create"
    if method == "PUT" and name is not None:
        return "update"
    if method == "PATCH" and name is not None:
        return "patch"
    if method == "DELETE":
        return "delete" if name is not None else "deletecollection"
    raise errors.method_not_allowed(method)


def _injected(status: int, target: _Target) -> ApiError:
    if status == 409:
        return errors.conflict(target.rt.plural, target.rt.group, target.name or "")
    if status == 404:
        return errors.not_found(target.rt.plural, target.rt.group, target.name or "")
    if status == 410:
        return errors.gone(f"too old resource version (injected fault for {target.verb} {target.rt.plural})")
    return errors.status_error(status, f"injected fault for {target.verb} {target.rt.plural}")


async def _body(request: web.Request, *, optional: bool = False) -> Any:
    raw = await request.read()
    if not raw.strip():
        if optional:
            return None
        raise errors.bad_request("the request body is empty")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from exc


def _json(body: Any, status: int = 200) -> web.Response:
    return web.Response(
        body=json.dumps(body, separators=(",", ":")).encode(), status=status, content_type="application/json"
    )
