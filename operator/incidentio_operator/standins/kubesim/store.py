"""The stand-in's object store: API-server write semantics, resourceVersions, watch history and fan-out."""

from __future__ import annotations

import asyncio
import base64
import binascii
import bisect
import collections
import copy
import datetime
import json
import random
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import errors
from .errors import ApiError
from .patches import json_patch, merge_patch
from .resources import BUILTINS, CRD_GROUP, ResourceType, from_crd
from .selectors import Predicate

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# Same alphabet as the real server's generateName suffixes (no vowels, no look-alike digits).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"
_SYSTEM_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")


class SchemaProblemLike(Protocol):
    """One schema violation: the field path (`spec.state`) and the message the server reports for it."""

    @property
    def field(self) -> str: ...

    @property
    def message(self) -> str: ...


class ObjectValidatorLike(Protocol):
    """What the stand-in needs from a CRD's schema: pruning, defaulting and validation of an object."""

    def apply_defaults(self, obj: Mapping[str, Any]) -> dict[str, Any]: ...

    def prune(self, obj: Mapping[str, Any]) -> dict[str, Any]: ...

    def validate(self, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> Sequence[SchemaProblemLike]: ...


ValidatorFactory = Callable[[Mapping[str, Any]], ObjectValidatorLike]


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class WatchEvent:
    """One change in the history; objects are shared, never copied: stored objects are never mutated."""

    rv: int
    type: str
    resource: tuple[str, str]
    obj: dict[str, Any]
    old: dict[str, Any] | None
    _lines: dict[tuple[str, str], bytes] = field(default_factory=dict)

    def line(self, event_type: str, api_version: str) -> bytes:
        """The JSON line for one watcher, serialised once per (type, apiVersion) and shared."""
        key = (event_type, api_version)
        cached = self._lines.get(key)
        if cached is None:
            obj = self.obj if self.obj.get("apiVersion") == api_version else {**self.obj, "apiVersion": api_version}
            cached = json.dumps({"type": event_type, "object": obj}, separators=(",", ":")).encode() + b"\n"
            self._lines[key] = cached
        return cached


class Watcher:
    """One open watch stream: its filters and the events waiting to be written to it."""

    def __init__(
        self,
        rt: ResourceType,
        version: str,
        namespace: str | None,
        labels: Predicate | None,
        fields: Predicate | None,
    ) -> None:
        self.rt = rt
        self.api_version = rt.api_version(version)
        self.namespace = namespace
        self._labels = labels
        self._fields = fields
        self.pending: collections.deque[tuple[str, WatchEvent]] = collections.deque()
        self.dropped = False
        self.closed = False
        self.initial_count = 0
        self.initial_rv = "0"
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._wakeup = asyncio.Event()

    def matches(self, obj: Mapping[str, Any]) -> bool:
        if self.namespace is not None and obj["metadata"].get("namespace") != self.namespace:
            return False
        return (self._labels is None or self._labels(obj)) and (self._fields is None or self._fields(obj))

    def offer(self, event: WatchEvent) -> bool:
        """Queue the event as this watcher sees it (selector transitions become ADDED/DELETED)."""
        now = self.matches(event.obj)
        before = event.old is not None and self.matches(event.old)
        if event.type == "MODIFIED":
            event_type = "MODIFIED" if now and before else "ADDED" if now else "DELETED" if before else ""
        else:
            event_type = event.type if now else ""
        if event_type:
            self.pending.append((event_type, event))
        return bool(event_type)

    def notify(self) -> None:
        if threading.get_ident() == self._thread:
            self._wakeup.set()
        else:
            self._loop.call_soon_threadsafe(self._wakeup.set)

    def drop(self) -> None:
        self.dropped = True
        self.notify()

    def close(self) -> None:
        self.closed = True
        self.notify()

    async def wait(self, within: float) -> None:
        """Wait until something is queued, the stream must end, or the timeout passes."""
        self._wakeup.clear()
        if self.pending or self.dropped or self.closed:
            return
        try:
            await asyncio.wait_for(self._wakeup.wait(), within)
        except TimeoutError:
            return


@dataclass
class ListPage:
    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str
    remaining: int | None


def _encode_continue(rv: int, key: tuple[str, str]) -> str:
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(key)}).encode()).decode()


def _decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc


def _without_rv(obj: Mapping[str, Any]) -> dict[str, Any]:
    meta = {k: v for k, v in obj.get("metadata", {}).items() if k != "resourceVersion"}
    return {**obj, "metadata": meta}


def _spec_part(obj: Mapping[str, Any], rt: ResourceType) -> dict[str, Any]:
    """What metadata.generation tracks: everything but metadata (and status, where it is a subresource)."""
    skipped = ("metadata", "status") if rt.has_status else ("metadata",)
    return {k: v for k, v in obj.items() if k not in skipped}


class Store:
    """All objects of all served resources, with the write rules of the real API server."""

    def __init__(
        self,
        *,
        crds: Sequence[Mapping[str, Any]],
        validator_factory: ValidatorFactory | None,
        history_size: int,
    ) -> None:
        self._lock = threading.RLock()
        self._types: dict[tuple[str, str], ResourceType] = {rt.key: rt for rt in BUILTINS}
        self._objects: dict[tuple[str, str], dict[str, dict[str, dict[str, Any]]]] = {}
        self._sorted_keys: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._validator_factory = validator_factory
        self._validators: dict[tuple[str, str], ObjectValidatorLike] = {}
        self._rv = 0
        self._history: collections.deque[WatchEvent] = collections.deque()
        self._history_size = history_size
        self._compacted_rv = 0
        self._watchers: dict[tuple[str, str], set[Watcher]] = collections.defaultdict(set)
        for crd in crds:
            self.create(self._types[(CRD_GROUP, "customresourcedefinitions")], None, crd)

    # Resource types ------------------------------------------------------------------------------

    @property
    def resource_version(self) -> str:
        return str(self._rv)

    def types(self) -> list[ResourceType]:
        with self._lock:
            return list(self._types.values())

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
        self._validators.pop(rt.key, None)

    def _unregister_crd(self, crd: Mapping[str, Any]) -> None:
        rt = from_crd(crd)
        # Simplification: the real server deletes the instances through their finalizers first.
        for ns_objects in list(self._objects.get(rt.key, {}).values()):
            for obj in list(ns_objects.values()):
                self._remove(rt, obj)
        self._types.pop(rt.key, None)
        self._validators.pop(rt.key, None)
        self._objects.pop(rt.key, None)
        self._sorted_keys.pop(rt.key, None)
        for watcher in self._watchers.pop(rt.key, set()):
            watcher.close()

    def _validator(self, rt: ResourceType) -> ObjectValidatorLike | None:
        if rt.crd is None or self._validator_factory is None:
            return None
        validator = self._validators.get(rt.key)
        if validator is None:
            validator = self._validators[rt.key] = self._validator_factory(rt.crd)
        return validator

    # Reads ---------------------------------------------------------------------------------------

    def find(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any] | None:
        return self._objects.get(rt.key, {}).get(namespace or "", {}).get(name)

    def get(self, rt: ResourceType, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
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
    ) -> ListPage:
        """One page in etcd key order; a continued list keeps the first page's resourceVersion."""
        with self._lock:
            keys = self._keys(rt)
            list_rv = self._rv
            if namespace is not None:
                start, end = bisect.bisect_left(keys, (namespace, "")), bisect.bisect_left(keys, (namespace + "\0", ""))
            else:
                start, end = 0, len(keys)
            if continue_token:
                list_rv, after = _decode_continue(continue_token)
                if list_rv < self._compacted_rv:
                    raise errors.gone(
                        "The provided continue parameter is too old to display a consistent list result. "
                        "You can start a new list without the continue parameter.",
                        "Expired",
                    )
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
            token = _encode_continue(list_rv, keys[index - 1]) if more else ""
            remaining = end - index if more and labels is None and fields is None else None
            return ListPage(items, str(list_rv), token, remaining)

    # Writes --------------------------------------------------------------------------------------

    def _next_rv(self) -> int:
        self._rv += 1
        return self._rv

    def _emit(self, rt: ResourceType, event_type: str, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        event = WatchEvent(self._rv, event_type, rt.key, obj, old)
        if len(self._history) >= self._history_size:
            self._compacted_rv = self._history.popleft().rv
        self._history.append(event)
        for watcher in self._watchers.get(rt.key, ()):
            if watcher.offer(event):
                watcher.notify()

    def _store(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        bucket = self._objects.setdefault(rt.key, {}).setdefault(meta.get("namespace") or "", {})
        if meta["name"] not in bucket:
            self._sorted_keys.pop(rt.key, None)
        bucket[meta["name"]] = obj

    def _remove(self, rt: ResourceType, obj: dict[str, Any]) -> dict[str, Any]:
        if rt.key == (CRD_GROUP, "customresourcedefinitions"):
            self._unregister_crd(obj)
        meta = obj["metadata"]
        namespace = meta.get("namespace") or ""
        del self._objects[rt.key][namespace][meta["name"]]
        self._sorted_keys.pop(rt.key, None)
        final = {**obj, "metadata": {**meta, "resourceVersion": str(self._next_rv())}}
        self._emit(rt, "DELETED", final, None)
        if namespace:
            self._finish_namespace_if_empty(namespace)
        return final

    def _check_namespace(self, rt: ResourceType, namespace: str | None, obj: dict[str, Any]) -> None:
        meta = obj["metadata"]
        if not rt.namespaced:
            meta.pop("namespace", None)
            return
        declared = meta.get("namespace")
        if declared and namespace and declared != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        namespace = namespace or declared
        if not namespace:
            raise errors.bad_request("the namespace of the object is required")
        meta["namespace"] = namespace
        ns_obj = self.find(self._types[("", "namespaces")], None, namespace)
        if ns_obj is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns_obj["metadata"].get("deletionTimestamp"):
            raise ApiError(
                403,
                "Forbidden",
                f'{errors.qualified(rt.plural, rt.group)} "{meta.get("name") or meta.get("generateName", "")}" '
                f"is forbidden: unable to create new content in namespace {namespace} "
                "because it is being terminated",
            )

    def _check_name(self, rt: ResourceType, obj: dict[str, Any]) -> None:
        name = obj["metadata"]["name"]
        pattern, limit = (_LABEL, 63) if rt.plural == "namespaces" else (_SUBDOMAIN, 253)
        if not isinstance(name, str) or len(name) > limit or not pattern.match(name):
            raise errors.invalid(
                rt.kind,
                rt.group,
                str(name),
                [
                    (
                        "metadata.name",
                        f'Invalid value: "{name}": a lowercase RFC 1123 name must consist of lower case alphanumeric '
                        "characters, '-' or '.', and must start and end with an alphanumeric character",
                    )
                ],
            )
        if rt.key == (CRD_GROUP, "customresourcedefinitions"):
            spec = obj.get("spec") or {}
            expected = f"{(spec.get('names') or {}).get('plural')}.{spec.get('group')}"
            if name != expected:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    name,
                    [("metadata.name", f'Invalid value: "{name}": must be spec.names.plural+"."+spec.group')],
                )

    def _shape(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """Kind-specific server-side behaviour, then pruning, defaulting and validation of custom objects."""
        if rt.key == ("", "secrets"):
            string_data = obj.pop("stringData", None) or {}
            data = dict(obj.get("data") or {})
            for key, value in string_data.items():
                data[key] = base64.b64encode(str(value).encode()).decode()
            if data:
                obj["data"] = data
            obj.setdefault("type", "Opaque")
        elif rt.key == ("", "namespaces"):
            obj["metadata"].setdefault("labels", {})["kubernetes.io/metadata.name"] = obj["metadata"]["name"]
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj.setdefault("status", {}).setdefault("phase", "Active")
        elif rt.key == (CRD_GROUP, "customresourcedefinitions"):
            self._shape_crd(obj, old)
        validator = self._validator(rt)
        if validator is None:
            return obj
        envelope: dict[str, Any] = {k: obj[k] for k in ("apiVersion", "kind", "metadata") if k in obj}
        shaped: dict[str, Any] = validator.apply_defaults(validator.prune(obj))
        shaped.update(envelope)
        problems = validator.validate(shaped, old)
        if problems:
            name = obj["metadata"].get("name") or obj["metadata"].get("generateName", "")
            raise errors.invalid(rt.kind, rt.group, name, [(p.field, p.message) for p in problems])
        return shaped

    def _shape_crd(self, obj: dict[str, Any], old: dict[str, Any] | None) -> None:
        spec = obj.get("spec") or {}
        names = dict(spec.get("names") or {})
        problems: list[tuple[str, str]] = [
            (f"spec.{path}", "Required value")
            for path, value in (
                ("group", spec.get("group")),
                ("names.plural", names.get("plural")),
                ("names.kind", names.get("kind")),
                ("versions", spec.get("versions")),
            )
            if not value
        ]
        if problems:
            raise errors.invalid("CustomResourceDefinition", CRD_GROUP, obj["metadata"].get("name", ""), problems)
        names.setdefault("singular", names["kind"].lower())
        names.setdefault("listKind", f"{names['kind']}List")
        storage = next((v["name"] for v in spec["versions"] if v.get("storage")), spec["versions"][0]["name"])
        old_status = (old or {}).get("status") or {}
        if old_status.get("acceptedNames") == names:
            # Re-applying an unchanged CRD must stay a no-op, as it is on a real cluster.
            obj["status"] = old_status
            return
        now = now_rfc3339()
        obj["status"] = {
            "acceptedNames": names,
            "storedVersions": [storage],
            "conditions": [
                {
                    "type": "NamesAccepted",
                    "status": "True",
                    "reason": "NoConflicts",
                    "message": "no conflicts found",
                    "lastTransitionTime": now,
                },
                {
                    "type": "Established",
                    "status": "True",
                    "reason": "InitialNamesAccepted",
                    "message": "the initial names have been accepted",
                    "lastTransitionTime": now,
                },
            ],
        }

    def create(self, rt: ResourceType, namespace: str | None, body: Mapping[str, Any]) -> dict[str, Any]:
        with self._lock:
            obj = self._new_object(rt, body)
            self._check_namespace(rt, namespace, obj)
            meta = obj["metadata"]
            if meta.get("resourceVersion"):
                raise errors.status_error(500, "resourceVersion should not be set on objects to be created")
            if not meta.get("name"):
                if not meta.get("generateName"):
                    raise errors.invalid(
                        rt.kind, rt.group, "", [("metadata.name", "Required value: name or generateName is required")]
                    )
                meta["name"] = meta["generateName"] + "".join(random.choices(_SUFFIX_ALPHABET, k=5))
            self._check_name(rt, obj)
            for key in (*_SYSTEM_FIELDS, "managedFields", "selfLink"):
                meta.pop(key, None)
            if rt.has_status and rt.plural != "namespaces":
                obj.pop("status", None)
            obj = self._shape(rt, obj, None)
            meta = obj["metadata"]
            if self.find(rt, meta.get("namespace"), meta["name"]) is not None:
                raise errors.already_exists(rt.plural, rt.group, meta["name"])
            meta["uid"] = str(uuid.uuid4())
            meta["creationTimestamp"] = now_rfc3339()
            if rt.tracks_generation:
                meta["generation"] = 1
            meta["resourceVersion"] = str(self._next_rv())
            self._store(rt, obj)
            if rt.key == (CRD_GROUP, "customresourcedefinitions"):
                self._register_crd(obj)
            self._emit(rt, "ADDED", obj, None)
            return obj

    def _new_object(self, rt: ResourceType, body: Mapping[str, Any]) -> dict[str, Any]:
        if not isinstance(body, Mapping):
            raise errors.bad_request("the body of the request must be a JSON object")
        obj = copy.deepcopy(dict(body))
        if obj.get("kind") not in (None, rt.kind):
            raise errors.bad_request(f'the kind "{obj["kind"]}" does not match the resource {rt.plural}')
        api_version = obj.get("apiVersion")
        if api_version is not None and api_version not in {rt.api_version(v) for v in rt.versions}:
            raise errors.bad_request(f'the apiVersion "{api_version}" does not match the resource {rt.plural}')
        obj["apiVersion"] = rt.storage_api_version
        obj["kind"] = rt.kind
        if not isinstance(obj.setdefault("metadata", {}), dict):
            raise errors.bad_request("metadata must be an object")
        return obj

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
        """PUT: optimistic concurrency on metadata.resourceVersion; CRs refuse an update without one."""
        with self._lock:
            old = self.find(rt, namespace, name)
            if old is None:
                raise errors.not_found(rt.plural, rt.group, name)
            new = self._new_object(rt, body)
            meta = new["metadata"]
            if meta.get("name", name) != name:
                raise errors.bad_request(
                    f"the name of the object ({meta['name']}) does not match the name on the URL ({name})"
                )
            expected = meta.get("resourceVersion")
            if not expected and require_rv and rt.is_custom:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    name,
                    [("metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")],
                )
            if expected and expected != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name)
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
        with self._lock:
            old = self.find(rt, namespace, name)
            if old is None:
                raise errors.not_found(rt.plural, rt.group, name)
            if content_type == "application/json-patch+json":
                patched = json_patch(old, patch)
            elif content_type == "application/merge-patch+json" or (
                content_type == "application/strategic-merge-patch+json" and not rt.is_custom
            ):
                if not isinstance(patch, Mapping):
                    raise errors.bad_request("a merge patch must be a JSON object")
                patched = merge_patch(old, patch)
            else:
                raise errors.unsupported_media_type(content_type)
            patched_meta = patched.get("metadata")
            if not isinstance(patched_meta, dict):
                raise errors.bad_request("metadata must be an object")
            if patched_meta.get("resourceVersion") != old["metadata"]["resourceVersion"]:
                raise errors.conflict(rt.plural, rt.group, name)
            if patched_meta.get("name", name) != name:
                raise errors.bad_request("the name of the object cannot be changed by a patch")
            return self._write(rt, old, self._new_object(rt, patched), subresource)

    def _write(
        self, rt: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str | None
    ) -> dict[str, Any]:
        old_meta = old["metadata"]
        if subresource == "status":
            status = new.get("status")
            new = {k: v for k, v in old.items() if k != "status"}
            if status is not None:
                new["status"] = status
        else:
            meta = new["metadata"]
            for key in (*_SYSTEM_FIELDS, "namespace", "name"):
                if key in old_meta:
                    meta[key] = old_meta[key]
                else:
                    meta.pop(key, None)
            meta.pop("managedFields", None)
            meta.pop("selfLink", None)
            if rt.has_status:
                new.pop("status", None)
                if "status" in old:
                    new["status"] = old["status"]
            added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
            if old_meta.get("deletionTimestamp") and added:
                raise errors.invalid(
                    rt.kind,
                    rt.group,
                    old_meta["name"],
                    [
                        (
                            "metadata.finalizers",
                            "Forbidden: no new finalizers can be added if the object is being deleted, "
                            f"found new finalizers {sorted(added)}",
                        )
                    ],
                )
        new = self._shape(rt, new, old)
        new["metadata"]["resourceVersion"] = old_meta["resourceVersion"]
        if _without_rv(new) == _without_rv(old):
            return old
        if rt.tracks_generation and _spec_part(new, rt) != _spec_part(old, rt):
            new["metadata"]["generation"] = old_meta.get("generation", 0) + 1
        if new["metadata"].get("deletionTimestamp") and not new["metadata"].get("finalizers"):
            # The real server turns the update that drops the last finalizer into the deletion itself.
            self._store(rt, new)
            return self._remove(rt, new)
        new["metadata"]["resourceVersion"] = str(self._next_rv())
        self._store(rt, new)
        if rt.key == (CRD_GROUP, "customresourcedefinitions"):
            self._register_crd(new)
        self._emit(rt, "MODIFIED", new, old)
        return new

    def delete(
        self, rt: ResourceType, namespace: str | None, name: str, options: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        """Remove at once, or mark as terminating while finalizers remain (then it is a no-op to repeat)."""
        with self._lock:
            old = self.find(rt, namespace, name)
            if old is None:
                raise errors.not_found(rt.plural, rt.group, name)
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
            if old["metadata"].get("deletionTimestamp"):
                return old
            if rt.plural == "namespaces" and not rt.group:
                return self._delete_namespace(rt, old)
            if not old["metadata"].get("finalizers"):
                return self._remove(rt, old)
            return self._mark_terminating(rt, old)

    def _mark_terminating(
        self, rt: ResourceType, old: dict[str, Any], status: Mapping[str, Any] | None = None
    ) -> dict[str, Any]:
        meta = {**old["metadata"], "deletionTimestamp": now_rfc3339(), "deletionGracePeriodSeconds": 0}
        if rt.tracks_generation:
            meta["generation"] = old["metadata"].get("generation", 0) + 1
        meta["resourceVersion"] = str(self._next_rv())
        new = {**old, "metadata": meta}
        if status is not None:
            new["status"] = {**old.get("status", {}), **status}
        self._store(rt, new)
        self._emit(rt, "MODIFIED", new, old)
        return new

    def _delete_namespace(self, rt: ResourceType, old: dict[str, Any]) -> dict[str, Any]:
        """A simplified namespace controller: delete everything inside, then the namespace once empty."""
        name = old["metadata"]["name"]
        terminating = self._mark_terminating(rt, old, {"phase": "Terminating"})
        for key, buckets in list(self._objects.items()):
            inner = self._types.get(key)
            if inner is None or not inner.namespaced:
                continue
            for obj in list(buckets.get(name, {}).values()):
                if obj["metadata"].get("finalizers"):
                    if not obj["metadata"].get("deletionTimestamp"):
                        self._mark_terminating(inner, obj)
                else:
                    self._remove(inner, obj)
        return self.find(rt, None, name) or terminating

    def _finish_namespace_if_empty(self, namespace: str) -> None:
        ns_type = self._types[("", "namespaces")]
        ns_obj = self.find(ns_type, None, namespace)
        if ns_obj is None or not ns_obj["metadata"].get("deletionTimestamp"):
            return
        if ns_obj["metadata"].get("finalizers"):
            return
        if any(buckets.get(namespace) for key, buckets in self._objects.items() if key != ns_type.key):
            return
        self._remove(ns_type, ns_obj)

    # Watching ------------------------------------------------------------------------------------

    def open_watch(self, watcher: Watcher, since: str | None, initial: bool) -> ApiError | None:
        """Register a watcher and queue what it must see first: a replay after `since`, or the current state.

        Registration and the initial events happen under one lock, so no write falls between them.
        """
        with self._lock:
            if initial or not since or since == "0":
                keys = self._keys(watcher.rt)
                objects = self._objects.get(watcher.rt.key, {})
                for ns, name in keys:
                    if watcher.namespace is None or ns == watcher.namespace:
                        obj = objects[ns][name]
                        watcher.offer(
                            WatchEvent(int(obj["metadata"]["resourceVersion"]), "ADDED", watcher.rt.key, obj, None)
                        )
            else:
                try:
                    after = int(since)
                except ValueError:
                    return errors.bad_request(f"invalid resource version {since!r}")
                if after < self._compacted_rv:
                    return errors.gone(f"too old resource version: {after} ({self._compacted_rv})")
                replay: list[WatchEvent] = []
                for event in reversed(self._history):
                    if event.rv <= after:
                        break
                    if event.resource == watcher.rt.key:
                        replay.append(event)
                for event in reversed(replay):
                    watcher.offer(event)
            watcher.initial_count = len(watcher.pending)
            watcher.initial_rv = str(self._rv)
            self._watchers[watcher.rt.key].add(watcher)
            return None

    def quiet_rv(self, watcher: Watcher) -> str | None:
        """The revision a bookmark may announce: the current one, once the watcher has nothing pending."""
        with self._lock:
            return None if watcher.pending else str(self._rv)

    def close_watch(self, watcher: Watcher) -> None:
        with self._lock:
            self._watchers.get(watcher.rt.key, set()).discard(watcher)

    def watchers(self, resource: str | None = None) -> Iterable[Watcher]:
        with self._lock:
            return [w for key, ws in self._watchers.items() for w in ws if resource is None or key[1] == resource]
