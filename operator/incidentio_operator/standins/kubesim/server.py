"""The HTTP face of the Kubernetes API stand-in: lifecycle, request handling, and the controls tests use."""

from __future__ import annotations

import asyncio
import contextlib
import copy
import math
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Unpack, cast

from aiohttp import web

from . import errors, routing
from .admission import ObjectValidatorLike, ValidatorFactory
from .crds import CrdFinalizer
from .errors import ApiError
from .faults import BodiesSent, FaultPlan, RecordedCall, RequestMatch, bodies_sent, matches
from .kubeconfig import write_kubeconfig
from .namespaces import NamespaceController
from .routing import Target, encode, json_response, read_body
from .selectors import field_selector, label_selector
from .store import Store
from .streaming import WatchStream

_CREATED_NAME = web.RequestKey("kubesim.created_name", str)
# The object bodies a response carries, with the bytes of their JSON, for the request log.
Sent = list[tuple[Sequence[Mapping[str, Any]], int]]


def default_validator_factory(crd: Mapping[str, Any]) -> ObjectValidatorLike:
    """Validate custom objects with the project's schema module, as the real server uses the CRD schema."""
    # Imported lazily: the schema module compiles CEL and JSON schemas, which plain CRUD users never need.
    from incidentio_operator.offline.schema import ObjectValidator

    return ObjectValidator.from_crd(crd)


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
        self._controllers = (NamespaceController(self._store), CrdFinalizer(self._store))
        self._watch_stream = WatchStream(self._store, bookmark_interval)
        self._faults = FaultPlan()
        self.requests: list[RecordedCall] = []
        self._runner: web.AppRunner | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._release = asyncio.Event()
        self._held = 0
        self._url = ""

    # Lifecycle -----------------------------------------------------------------------------------

    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        """Serve on `host:port` (port 0: any free port) and start the controllers (namespaces, CRD cleanup)."""
        self._loop = asyncio.get_running_loop()
        self._release = asyncio.Event()
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self._handle)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, host, port)
        await site.start()
        server = cast(asyncio.Server, site._server)
        bound_host, bound_port = server.sockets[0].getsockname()[:2]
        self._url = f"http://{bound_host}:{bound_port}"
        for controller in self._controllers:
            controller.start()

    async def stop(self) -> None:
        """Stop serving; open watch streams and held requests are ended first so that shutdown never waits."""
        for controller in self._controllers:
            await controller.stop()
        self._release_now()
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

    def restore_object(self, obj: Mapping[str, Any]) -> None:
        """Add a new object, status included, without admission (see `Store.restore`): for fixtures that put
        thousands of copies of an object the API has already admitted, where admission would be most of the time."""
        rt = self._store.type_for(obj.get("apiVersion", ""), obj.get("kind", ""))
        self._store.restore(rt, obj)

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

    # Faults ----------------------------------------------------------------------------------------

    def compact(self) -> str:
        """Forget the change history up to now, as etcd compaction or an API server restart does.

        Afterwards a watch resumed from any older resourceVersion gets one ERROR event with a 410 Expired
        Status ("too old resource version: X (Y)", Y the returned revision), and a list continued with
        an older continue token gets 410 Expired; the client must list again.
        """
        return self._store.compact()

    def drop_watches(self, resource: str | None = None) -> None:
        """Cut open watch streams (of one resource, by plural, or all) mid-flight; clients must reconnect."""
        for watcher in self._store.watchers(resource):
            watcher.drop()

    def open_watches(self, resource: str | None = None) -> int:
        """How many watch streams are open now (of one resource, by plural, or of all)."""
        return len(list(self._store.watchers(resource)))

    def fail_next(self, count: int, *, status: int, **match: Unpack[RequestMatch]) -> None:
        """Answer the next `count` matching requests with `status` without applying them (see `RequestMatch`).

        A 410 for a watch arrives as the real server sends it: an ERROR event in a 200 stream.
        """
        self._faults.fail(count, status, match)

    def delay_next(self, count: int, seconds: float, **match: Unpack[RequestMatch]) -> None:
        """Hold the next `count` matching requests for `seconds` (or until released) before serving them."""
        self._faults.hold(count, seconds, match)

    def hold_next(self, count: int, **match: Unpack[RequestMatch]) -> None:
        """Hold the next `count` matching requests until `release_held()` (or `stop()`), then serve them."""
        self._faults.hold(count, math.inf, match)

    def release_held(self) -> None:
        """Serve every request held now by `hold_next` or `delay_next`; callable from any thread."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._release_now)

    def _release_now(self) -> None:
        self._release.set()
        self._release = asyncio.Event()

    @property
    def held_requests(self) -> int:
        """How many requests `delay_next` or `hold_next` is holding right now."""
        return self._held

    # Accounting ------------------------------------------------------------------------------------

    def count(self, **match: Unpack[RequestMatch]) -> int:
        """How many recorded requests match (see `RequestMatch`)."""
        return sum(1 for call in list(self.requests) if matches(match, call.verb, call.resource, call.subresource))

    def sent(self, resource: str, *, verb: str | None = None) -> BodiesSent:
        """The object bodies of `resource` (a plural) that recorded responses carried to clients (of one verb)."""
        return bodies_sent(
            call for call in list(self.requests) if call.resource == resource and verb in (None, call.verb)
        )

    def clear_requests(self) -> None:
        self.requests.clear()

    # HTTP ----------------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        target: Target | None = None
        sent: Sent = []
        try:
            discovery = routing.discovery(request, self._store.types())
            if discovery is not None:
                response: web.StreamResponse = json_response(encode(discovery))
            else:
                target = routing.route(request, self._store.find_type)
                status, hold = self._faults.take(target.verb, target.rt.plural, target.subresource)
                if hold:
                    await self._hold(hold)
                if status == 410 and target.verb == "watch":
                    response = await self._watch(request, target, failure=_injected(status, target))
                elif status is not None:
                    raise _injected(status, target)
                elif target.verb == "watch":
                    response = await self._watch(request, target)
                else:
                    response = json_response(*await self._serve(request, target, sent))
        except ApiError as exc:
            response = json_response(encode(exc.to_status()), exc.status)
            if exc.status == 429:
                response.headers["Retry-After"] = "1"
        # An open watch stream was recorded when it started, so tests can wait for it to be there.
        if not (target is not None and target.verb == "watch" and response.prepared):
            call = self._record(request, target, response.status)
            for objects, size in sent:
                call.count_sent(objects, size)
        return response

    async def _hold(self, seconds: float) -> None:
        # A held request is released at once when the stand-in stops, so stop() never waits on it.
        self._held += 1
        try:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._release.wait(), None if math.isinf(seconds) else seconds)
        finally:
            self._held -= 1

    def _record(self, request: web.Request, target: Target | None, status: int) -> RecordedCall:
        call = RecordedCall(
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
        self.requests.append(call)
        return call

    async def _serve(self, request: web.Request, target: Target, sent: Sent) -> tuple[bytes, int]:
        """The response body and status of a request other than a watch; object bodies are noted in `sent`."""
        store, rt, ns, name = self._store, target.rt, target.namespace, target.name
        if target.verb == "list":
            return self._list_body(request, target, sent), 200
        if target.verb == "deletecollection":
            return self._delete_collection(request, target, await read_body(request, optional=True), sent), 200
        if target.verb == "create":
            created = store.create(rt, ns, await read_body(request))
            # Creates have no name in the URL (generateName); the log names what was created.
            request[_CREATED_NAME] = created["metadata"]["name"]
            return _object_body(target, created, sent), 201
        assert name is not None, "routing gives every other verb an object name"
        if target.verb == "get":
            return _object_body(target, store.get(rt, ns, name), sent), 200
        if target.verb == "update":
            updated = store.update(rt, ns, name, await read_body(request), subresource=target.subresource)
            return _object_body(target, updated, sent), 200
        if target.verb == "patch":
            content_type = request.headers.get("Content-Type", "").split(";")[0].strip()
            patched = store.patch(rt, ns, name, content_type, await read_body(request), subresource=target.subresource)
            return _object_body(target, patched, sent), 200
        obj, gone = store.delete(rt, ns, name, await read_body(request, optional=True))
        if gone and rt.plural != "namespaces":
            # Registries other than the namespaces' answer an immediate deletion with a Status (finalizeDelete).
            return encode(_deleted_status(target, obj)), 200
        return _object_body(target, obj, sent), 200

    def _list_page(self, request: web.Request, target: Target) -> tuple[dict[str, Any], list[dict[str, Any]]]:
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
        envelope = {"apiVersion": target.api_version, "kind": f"{target.rt.kind}List", "metadata": metadata}
        return envelope, page.items

    def _list_body(self, request: web.Request, target: Target, sent: Sent) -> bytes:
        envelope, items = self._list_page(request, target)
        return _items_body(target, envelope, items, sent)

    def _delete_collection(self, request: web.Request, target: Target, options: Any, sent: Sent) -> bytes:
        """The list of what matched, as it was before the deletion (the generic registry's DeleteCollection)."""
        envelope, items = self._list_page(request, target)
        for item in items:
            self._store.delete(target.rt, item["metadata"].get("namespace"), item["metadata"]["name"], options)
        envelope["metadata"] = {"resourceVersion": self._store.resource_version}
        return _items_body(target, envelope, items, sent)

    async def _watch(self, request: web.Request, target: Target, failure: ApiError | None = None) -> web.StreamResponse:
        response = web.StreamResponse(status=200, headers={"Content-Type": "application/json"})
        response.enable_chunked_encoding()
        await response.prepare(request)
        call = self._record(request, target, response.status)
        await self._watch_stream.serve(request, target, call, response, failure)
        return response


def _items_body(target: Target, envelope: dict[str, Any], items: list[dict[str, Any]], sent: Sent) -> bytes:
    """A list's JSON; the items' share of it (less brackets and commas) is what they weigh."""
    items_json = encode([target.present(item) for item in items])
    sent.append((items, len(items_json) - 2 - max(len(items) - 1, 0)))
    return b"".join((encode(envelope)[:-1], b',"items":', items_json, b"}"))


def _object_body(target: Target, obj: dict[str, Any], sent: Sent) -> bytes:
    body = encode(target.present(obj))
    sent.append(([obj], len(body)))
    return body


def _deleted_status(target: Target, obj: Mapping[str, Any]) -> dict[str, Any]:
    details: dict[str, Any] = {"name": obj["metadata"]["name"], "kind": target.rt.plural}
    if target.rt.group:
        details["group"] = target.rt.group
    details["uid"] = obj["metadata"].get("uid", "")
    return {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": details}


def _injected(status: int, target: Target) -> ApiError:
    if status == 409:
        return errors.conflict(target.rt.plural, target.rt.group, target.name or "")
    if status == 404:
        return errors.not_found(target.rt.plural, target.rt.group, target.name or "")
    if status == 410:
        return errors.expired(f"too old resource version (injected fault for {target.verb} {target.rt.plural})")
    return errors.status_error(status, f"injected fault for {target.verb} {target.rt.plural}")
