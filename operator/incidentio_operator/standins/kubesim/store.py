"""The stand-in's object store: every object of every served resource, and the API server's write semantics.

resourceVersions are one global counter (the etcd revision); every write is published to the watch cache.
"""

from __future__ import annotations

import bisect
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from . import admission, errors, paging, updates
from .admission import ValidatorFactory, new_object, now_rfc3339
from .errors import ApiError
from .resources import BUILTINS, ResourceType, from_crd
from .selectors import Predicate
from .updates import CRDS, NAMESPACES
from .watchcache import WatchCache, Watcher, WatchEvent


class Store:
    """All objects of all served resources, with the write rules of the real API server.

    Thread-safe: every method takes the store's re-entrant lock; `lock` lets a caller make several
    calls one atomic step (as the namespace controller does for one pass).
    """

    def __init__(
        self,
        *,
        crds: Sequence[Mapping[str, Any]],
        validator_factory: ValidatorFactory | None,
        history_size: int,
    ) -> None:
        self.lock = threading.RLock()
        self._types: dict[tuple[str, str], ResourceType] = {rt.key: rt for rt in BUILTINS}
        self._objects: dict[tuple[str, str], dict[str, dict[str, dict[str, Any]]]] = {}
        self._sorted_keys: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._strategies = admission.Strategies(validator_factory)
        self._rv = 0
        self._cache = WatchCache(history_size)
        # Told of every change (the type and the object as it now is), under the lock: the controllers.
        self.listeners: list[Callable[[ResourceType, dict[str, Any]], None]] = []
        for crd in crds:
            self.create(self._types[CRDS], None, crd)

    # Resource types ------------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def types(self) -> list[ResourceType]:
        with self.lock:
            return list(self._types.values())

    def namespaced_types(self) -> list[ResourceType]:
        """Every served resource that lives in namespaces, in a stable order (built-ins first)."""
        return [rt for rt in self.types() if rt.namespaced]

    def find_type(self, group: str, version: str, plural: str) -> ResourceType | None:
        rt = self._types.get((group, plural))
        return rt if rt is not None and version in rt.versions else None

    def type_for(self, api_version: str, kind_or_plural: str) -> ResourceType:
        """The served type of `apiVersion` with that kind, plural, singular or short name."""
        group, _, version = api_version.rpartition("/")
        wanted = kind_or_plural.lower()
        for rt in self.types():
            if (
                rt.group == group
                and version in rt.versions
                and wanted in (rt.kind.lower(), rt.plural, rt.singular, *rt.short_names)
            ):
                return rt
        raise ApiError(404, "NotFound", f'no matches for kind "{kind_or_plural}" in version "{api_version}"')

    def _register_crd(self, crd: Mapping[str, Any]) -> None:
        rt = from_crd(crd)
        self._types[rt.key] = rt
        self._strategies.forget(rt.key)

    def _unregister_crd(self, crd: Mapping[str, Any]) -> None:
        rt = from_crd(crd)
        # The CRD finalizer has deleted the instances by now, unless someone removed its finalizer by hand:
        # then, as on a real cluster, what is left is no longer served, and its watches just end.
        self._types.pop(rt.key, None)
        self._strategies.forget(rt.key)
        self._objects.pop(rt.key, None)
        self._sorted_keys.pop(rt.key, None)
        self._cache.close_all(rt.key)

    # Reads ---------------------------------------------------------------------------------------

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._objects.get(rt.key, {}).get(namespace or "", {}).get(name)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self.lock:
            obj = self.find(rt, namespace, name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

    def _keys(self, rt: ResourceType) -> list[tuple[str, str]]:
        keys = self._sorted_keys.get(rt.key)
        if keys is None:
            keys = sorted((ns, name) for ns, objs in self._objects.get(rt.key, {}).items() for name in objs)
            self._sorted_keys[rt.key] = keys
        return keys

    def list(
        self,
        rt: ResourceType,
        namespace: str | None,
        *,
        labels: Predicate | None = None,
        fields: Predicate | None = None,
        limit: int = 0,
        continue_token: str = "",
    ) -> paging.ListPage:
        """One page in etcd key order; a continued list keeps the first page's resourceVersion.

        A continue token older than the history is 410 Expired with a token that continues the list at
        the latest revision (https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks).
        """
        with self.lock:
            keys = self._keys(rt)
            list_rv = self._rv
            if namespace is not None:
                start, end = bisect.bisect_left(keys, (namespace, "")), bisect.bisect_left(keys, (namespace + "\0", ""))
            else:
                start, end = 0, len(keys)
            if continue_token:
                token_rv, after = paging.decode_continue(continue_token)
                if token_rv != paging.LATEST and token_rv < self._cache.oldest_rv:
                    fresh = paging.encode_continue(paging.LATEST, after)
                    raise errors.expired(paging.INCONSISTENT_CONTINUE, continue_token=fresh)
                list_rv = self._rv if token_rv == paging.LATEST else token_rv
                start = max(start, bisect.bisect_right(keys, after))
            items: list[dict[str, Any]] = []
            index = start
            while index < end and (not limit or len(items) < limit):
                ns, name = keys[index]
                obj = self._objects[rt.key][ns][name]
                if (labels is None or labels(obj)) and (fields is None or fields(obj)):
                    items.append(obj)
                index += 1
            more = index < end
            token = paging.encode_continue(list_rv, keys[index - 1]) if more else ""
            remaining = end - index if more and labels is None and fields is None else None
            return paging.ListPage(items, str(list_rv), token, remaining)

    # Writes --------------------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _emit(self, rt: ResourceType, event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        self._cache.publish(WatchEvent(self._rv, event_type, rt.key, obj, old))
        for listener in self.listeners:
            listener(rt, obj)

    def _store(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        bucket = self._objects.setdefault(rt.key, {}).setdefault(meta.get("namespace") or "", {})
        if meta["name"] not in bucket:
            self._sorted_keys.pop(rt.key, None)
        bucket[meta["name"]] = obj

    def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        """Remove the object; its DELETED event carries its last stored state at the deletion's revision.

        Source: apiserver/pkg/storage/etcd3/watcher.go ("this sends the *old* object with the etcd
        revision for the time at which it gets deleted"); so an update that drops the last finalizer is
        never stored, and the DELETED object still lists that finalizer, as kopf's processing notes.
        """
        if rt.key == CRDS:
            self._unregister_crd(obj)
        meta = obj["metadata"]
        del self._objects[rt.key][meta.get("namespace") or ""][meta["name"]]
        self._sorted_keys.pop(rt.key, None)
        final = {**obj, "metadata": {**meta, "resourceVersion": str(self._next_rv())}}
        self._emit(rt, "DELETED", final, None)
        return final

    def create(self, rt: ResourceType, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        with self.lock:
            obj = new_object(rt, body)
            admission.admit_to_namespace(rt, namespace, obj, self._namespace)
            if rt.is_custom:
                crd = self.find(self._types[CRDS], None, f"{rt.plural}.{rt.group}")
                admission.admit_custom_resource(rt, crd)
            updates.prepare_create(rt, obj)
            admission.check_name(rt, obj)
            obj = self._strategies.shape(rt, obj, None)
            meta = obj["metadata"]
            if self.find(rt, meta.get("namespace"), meta["name"]) is not None:
                raise errors.already_exists(rt.plural, rt.group, meta["name"])
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            if rt.tracks_generation:
                meta["generation"] = 1
            meta["resourceVersion"] = str(self._next_rv())
            self._store(rt, obj)
            if rt.key == CRDS:
                self._register_crd(obj)
            self._emit(rt, "ADDED", obj, None)
            return obj

    def restore(self, rt: ResourceType, body: Mapping[str, Any]) -> dict[str, Any]:
        """Store a new object as a restore from an etcd backup would: no admission, defaulting or validation
        (etcd holds what was admitted once; the caller vouches for it), its uid, creation time and generation
        kept (or given, when missing), a new resourceVersion, and an ADDED watch event. For fixtures with
        many objects."""
        with self.lock:
            obj = new_object(rt, body)
            meta = obj["metadata"]
            if self.find(rt, meta.get("namespace"), meta["name"]) is not None:
                raise errors.already_exists(rt.plural, rt.group, meta["name"])
            meta.setdefault("uid", str(uuid.uuid4()))
            meta.setdefault("creationTimestamp", now_rfc3339())
            if rt.tracks_generation:
                meta.setdefault("generation", 1)
            meta["resourceVersion"] = str(self._next_rv())
            self._store(rt, obj)
            self._emit(rt, "ADDED", obj, None)
            return obj

    def _existing(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        old = self.find(rt, namespace, name)
        if old is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return old

    def update(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        body: Mapping[str, Any],
        *,
        subresource: str | None = None,
        require_rv: bool = True,
    ) -> dict[str, Any]:
        """PUT (replace): optimistic concurrency on metadata.resourceVersion (see `updates.merge_update`)."""
        with self.lock:
            old = self._existing(rt, namespace, name)
            new = new_object(rt, body)
            updates.check_replace(rt, old, new, require_rv=require_rv)
            return self._write(rt, old, new, subresource)

    def patch(
        self,
        rt: ResourceType,
        namespace: str | None,
        name: str,
        content_type: str,
        patch: Any,
        *,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        with self.lock:
            old = self._existing(rt, namespace, name)
            return self._write(rt, old, updates.apply_patch(rt, old, content_type, patch), subresource)

    def _namespace(self, name: str) -> dict[str, Any] | None:
        return self.find(self._types[NAMESPACES], None, name)

    def _write(
        self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        old_meta = old["metadata"]
        new = self._strategies.shape(rt, updates.merge_update(rt, old, new, subresource), old)
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if updates.unchanged(old, new):
            return old
        generation = updates.next_generation(rt, old, new)
        if generation is not None:
            new["metadata"]["generation"] = generation
        if old_meta.get("deletionTimestamp") and updates.finalized(rt, new):
            # The update that releases a terminating object is its deletion; the update itself is never stored.
            return self._remove(rt, old)
        new["metadata"]["resourceVersion"] = str(self._next_rv())
        self._store(rt, new)
        if rt.key == CRDS:
            self._register_crd(new)
        self._emit(rt, "MODIFIED", new, old)
        return new

    def finalize_namespace(self, name: str, finalizer: str) -> dict[str, Any] | None:
        """The namespace's finalize subresource: drop one spec.finalizers entry; None once that removed it."""
        with self.lock:
            ns_type = self._types[NAMESPACES]
            old = self.find(ns_type, None, name)
            if old is None:
                return None
            spec = old.get("spec") or {}
            new = {**old, "spec": {**spec, "finalizers": [f for f in spec.get("finalizers") or () if f != finalizer]}}
            written = self._write(ns_type, old, new, "finalize")
            return None if self.find(ns_type, None, name) is None else written

    def delete(
        self, rt: ResourceType, namespace: str | None, name: str, options: Mapping[str, Any] | None = None
    ) -> tuple[dict[str, Any], bool]:
        """The object after the request, and whether it is gone; with finalizers it is only marked terminating.

        Deleting a terminating object again changes nothing
        (https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/).
        """
        with self.lock:
            old = self._existing(rt, namespace, name)
            preconditions = (options or {}).get("preconditions") or {}
            for key in ("uid", "resourceVersion"):
                if preconditions.get(key) and preconditions[key] != old["metadata"].get(key):
                    raise errors.conflict(
                        rt.plural,
                        rt.group,
                        name,
                        f"Precondition failed: {key} in precondition: {preconditions[key]}, "
                        f"{key} in object meta: {old['metadata'].get(key)}",
                    )
            marked = updates.registry_deletion(rt, old)
            if marked is not None:
                return self._mark(rt, old, marked), False
            if old["metadata"].get("finalizers"):
                return self._mark(rt, old, updates.marked_for_deletion(rt, old)), False
            return self._remove(rt, old), True

    def _mark(self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
        if new is old:
            return old
        new["metadata"]["resourceVersion"] = str(self._next_rv())
        self._store(rt, new)
        self._emit(rt, "MODIFIED", new, old)
        return new

    # Watching ------------------------------------------------------------------------------------

    def open_watch(self, watcher: Watcher, since: str | None, initial: bool) -> ApiError | None:
        """Register a watcher and queue what it must see first: a replay after `since`, or the current state.

        Registration and the initial events happen under one lock, so no write falls between them.
        """
        with self.lock:
            if initial or not since or since == "0":
                objects = self._objects.get(watcher.rt.key, {})
                for ns, name in self._keys(watcher.rt):
                    if watcher.namespace is None or ns == watcher.namespace:
                        obj = objects[ns][name]
                        watcher.offer(
                            WatchEvent(int(obj["metadata"]["resourceVersion"]), "ADDED", watcher.rt.key, obj, None)
                        )
            else:
                failure = self._cache.replay(watcher, since)
                if failure is not None:
                    return failure
            watcher.initial_count = len(watcher.pending)
            watcher.initial_rv = str(self._rv)
            self._cache.register(watcher)
            return None

    def quiet_rv(self, watcher: Watcher) -> str | None:
        """The revision a bookmark may announce: the current one, once the watcher has nothing pending."""
        with self.lock:
            return None if watcher.pending else str(self._rv)

    def close_watch(self, watcher: Watcher) -> None:
        with self.lock:
            self._cache.unregister(watcher)

    def watchers(self, resource: str | None = None) -> Iterable[Watcher]:
        with self.lock:
            return self._cache.watchers(resource)

    def compact(self) -> str:
        """Drop the whole change history up to the current revision; returns that revision."""
        with self.lock:
            self._cache.compact(self._rv)
            return str(self._rv)
