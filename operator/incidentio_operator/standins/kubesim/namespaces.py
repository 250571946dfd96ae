"""The namespace controller of kube-controller-manager: empties a terminating namespace, then removes it.

Modelled on kubernetes pkg/controller/namespace/deletion (`namespacedResourcesDeleter.Delete` and
status_condition_utils.go), as https://kubernetes.io/docs/concepts/overview/working-with-objects/namespaces/
and https://kubernetes.io/docs/tasks/administer-cluster/namespaces/#deleting-a-namespace describe it:

1. Every object of every namespaced resource in the namespace is deleted (custom resources, Secrets,
   Events, ...); an object with finalizers only gets its deletionTimestamp and stays until they are gone.
2. The namespace's status.conditions say what remains (NamespaceContentRemaining,
   NamespaceFinalizersRemaining, with the real reasons and messages).
3. Once nothing remains, the `kubernetes` finalizer is removed from spec.finalizers through the
   finalize subresource, which removes the namespace (DELETED on the namespace watch) — last.

Unlike the real controller, which retries a namespace with content left after an estimate of 15 s,
this one looks again whenever anything in a terminating namespace changes.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
from collections.abc import Mapping
from typing import Any

from .admission import now_rfc3339
from .resources import ResourceType
from .store import Store
from .watchcache import Wakeup

FINALIZER = "kubernetes"
# The condition types the controller maintains, in its order, with the reason and message of each when fine.
_OK_CONDITIONS: tuple[tuple[str, str, str], ...] = (
    ("NamespaceDeletionDiscoveryFailure", "ResourcesDiscovered", "All resources successfully discovered"),
    ("NamespaceDeletionGroupVersionParsingFailure", "ParsedGroupVersions", "All legacy kube types successfully parsed"),
    (
        "NamespaceDeletionContentFailure",
        "ContentDeleted",
        "All content successfully deleted, may be waiting on finalization",
    ),
    ("NamespaceContentRemaining", "ContentRemoved", "All content successfully removed"),
    ("NamespaceFinalizersRemaining", "ContentHasNoFinalizers", "All content-preserving finalizers finished"),
)


def _remaining_conditions(
    resources: Mapping[str, int], finalizers: Mapping[str, int]
) -> dict[str, tuple[str, str, str]]:
    """The conditions that report content left: type -> (status, reason, message)."""
    found: dict[str, tuple[str, str, str]] = {}
    if resources:
        listed = ", ".join(sorted(f"{name} has {count} resource instances" for name, count in resources.items()))
        found["NamespaceContentRemaining"] = ("True", "SomeResourcesRemain", f"Some resources are remaining: {listed}")
    if finalizers:
        listed = ", ".join(sorted(f"{name} in {count} resource instances" for name, count in finalizers.items()))
        found["NamespaceFinalizersRemaining"] = (
            "True",
            "SomeFinalizersRemain",
            f"Some content in the namespace has finalizers remaining: {listed}",
        )
    return found


def updated_conditions(
    current: list[dict[str, Any]], resources: Mapping[str, int], finalizers: Mapping[str, int]
) -> list[dict[str, Any]]:
    """The namespace's conditions after a pass; lastTransitionTime moves only when a status does."""
    remaining = _remaining_conditions(resources, finalizers)
    conditions = [dict(c) for c in current]
    for condition_type, ok_reason, ok_message in _OK_CONDITIONS:
        status, reason, message = remaining.get(condition_type, ("False", ok_reason, ok_message))
        old = next((c for c in conditions if c.get("type") == condition_type), None)
        if old is None:
            conditions.append(
                {
                    "type": condition_type,
                    "status": status,
                    "lastTransitionTime": now_rfc3339(),
                    "reason": reason,
                    "message": message,
                }
            )
        elif (old.get("status"), old.get("reason"), old.get("message")) != (status, reason, message):
            if old.get("status") != status:
                old["lastTransitionTime"] = now_rfc3339()
            old.update(status=status, reason=reason, message=message)
    return conditions


class NamespaceController:
    """Runs on the stand-in's event loop while it serves; woken by every change in a terminating namespace."""

    def __init__(self, store: Store) -> None:
        self._store = store
        namespaces = store.find_type("", "v1", "namespaces")
        assert namespaces is not None, "Namespace is a built-in resource"
        self._namespaces = namespaces
        self._pending: collections.OrderedDict[str, None] = collections.OrderedDict()
        self._wakeup: Wakeup | None = None
        self._task: asyncio.Task[None] | None = None
        store.on_change = self._changed

    def start(self) -> None:
        self._wakeup = Wakeup()
        self._task = asyncio.get_running_loop().create_task(self._run(), name="kubesim-namespace-controller")
        with self._store.lock:
            terminating = [
                ns["metadata"]["name"]
                for ns in self._store.list(self._namespaces, None).items
                if ns["metadata"].get("deletionTimestamp")
            ]
        for name in terminating:
            self._changed(name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        self._wakeup = None

    def _changed(self, namespace: str) -> None:
        """Called by the store under its lock for every change, with the namespace the change is in."""
        if not namespace or self._wakeup is None:
            return
        ns_obj = self._store.find(self._namespaces, None, namespace)
        if ns_obj is not None and ns_obj["metadata"].get("deletionTimestamp"):
            self._pending[namespace] = None
            self._wakeup.set()

    async def _run(self) -> None:
        wakeup = self._wakeup
        while wakeup is not None:
            await wakeup.wait()
            wakeup.clear()
            with self._store.lock:
                names = list(self._pending)
                self._pending.clear()
            for name in names:
                self.sync(name)

    def sync(self, name: str) -> None:
        """One pass over a terminating namespace, in one atomic step of the store."""
        store, ns_type = self._store, self._namespaces
        with store.lock:
            namespace = store.find(ns_type, None, name)
            if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
                return
            if FINALIZER not in ((namespace.get("spec") or {}).get("finalizers") or ()):
                return
            resources, finalizers = self._delete_content(name)
            namespace = store.find(ns_type, None, name) or namespace
            status = namespace.get("status") or {}
            conditions = updated_conditions(list(status.get("conditions") or ()), resources, finalizers)
            if conditions != status.get("conditions"):
                body = {**namespace, "status": {**status, "conditions": conditions}}
                store.update(ns_type, None, name, body, subresource="status")
            if not resources:
                store.finalize_namespace(name, FINALIZER)

    def _delete_content(self, namespace: str) -> tuple[dict[str, int], dict[str, int]]:
        """Delete everything in the namespace; what remains, as `plural.group` -> count and finalizer -> count."""
        resources: dict[str, int] = {}
        finalizers: dict[str, int] = {}
        for rt in self._store.namespaced_types():
            if "delete" not in rt.verbs:
                continue
            for obj in self._store.list(rt, namespace).items:
                self._store.delete(rt, namespace, obj["metadata"]["name"])
            left = self._store.list(rt, namespace).items
            if left:
                resources[_group_resource(rt)] = len(left)
            for obj in left:
                for finalizer in obj["metadata"].get("finalizers") or ():
                    finalizers[finalizer] = finalizers.get(finalizer, 0) + 1
        return resources, finalizers


def _group_resource(rt: ResourceType) -> str:
    # The real message prints `resource.group`, so core resources read `secrets.` with a trailing dot.
    return f"{rt.plural}.{rt.group}"
