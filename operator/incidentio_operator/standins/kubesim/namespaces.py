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
this one looks again whenever anything in a terminating namespace changes (see `controllers.Controller`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .controllers import Controller
from .resources import ResourceType
from .store import Store
from .updates import set_condition

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
    """The namespace's conditions after a pass: the five the controller maintains, in its order."""
    remaining = _remaining_conditions(resources, finalizers)
    conditions = [dict(c) for c in current]
    for condition_type, ok_reason, ok_message in _OK_CONDITIONS:
        set_condition(conditions, condition_type, *remaining.get(condition_type, ("False", ok_reason, ok_message)))
    return conditions


class NamespaceController(Controller):
    """Keyed by namespace name; a namespace is pending while it is terminating and anything in it changes."""

    name = "namespace-controller"

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        namespaces = store.find_type("", "v1", "namespaces")
        assert namespaces is not None, "Namespace is a built-in resource"
        self._namespaces = namespaces

    def key_for(self, rt: ResourceType, obj: Mapping[str, Any]) -> str | None:
        meta = obj["metadata"]
        name = meta["name"] if rt.key == self._namespaces.key else meta.get("namespace")
        if not name:
            return None
        namespace = self._store.find(self._namespaces, None, name)
        return name if namespace is not None and namespace["metadata"].get("deletionTimestamp") else None

    def initial_keys(self) -> Iterable[str]:
        for namespace in self._store.list(self._namespaces, None).items:
            if namespace["metadata"].get("deletionTimestamp"):
                yield namespace["metadata"]["name"]

    def sync(self, key: str) -> None:
        """One pass over a terminating namespace, in one atomic step of the store."""
        store, ns_type = self._store, self._namespaces
        with store.lock:
            namespace = store.find(ns_type, None, key)
            if namespace is None or not namespace["metadata"].get("deletionTimestamp"):
                return
            if FINALIZER not in ((namespace.get("spec") or {}).get("finalizers") or ()):
                return
            resources, finalizers = self._delete_content(key)
            namespace = store.find(ns_type, None, key) or namespace
            status = namespace.get("status") or {}
            conditions = updated_conditions(list(status.get("conditions") or ()), resources, finalizers)
            if conditions != status.get("conditions"):
                body = {**namespace, "status": {**status, "conditions": conditions}}
                store.update(ns_type, None, key, body, subresource="status")
            if not resources:
                store.finalize_namespace(key, FINALIZER)

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
