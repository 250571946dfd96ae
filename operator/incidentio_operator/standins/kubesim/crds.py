"""The CRD finalizer of the apiextensions server: a deleted CRD's instances go first, honouring their finalizers.

Modelled on apiextensions-apiserver pkg/controller/finalizer/crd_finalizer.go: a DELETE leaves the CRD with
the `customresourcecleanup.apiextensions.k8s.io` finalizer and a Terminating condition; creates of its
custom resources are refused (405) while updates go on; every instance is deleted (one with finalizers only
marked, and waited for); once none remain the condition says so, the finalizer is removed, and the CRD and
its resource go away (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#delete-a-customresourcedefinition).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from .controllers import Controller
from .resources import ResourceType
from .store import Store
from .updates import CRD_FINALIZER, CRDS, set_condition


class CrdFinalizer(Controller):
    """Keyed by CRD name; a CRD is pending while it is being deleted and anything of its kind changes."""

    name = "crd-finalizer"

    def __init__(self, store: Store) -> None:
        super().__init__(store)
        crds = store.find_type(CRDS[0], "v1", CRDS[1])
        assert crds is not None, "CustomResourceDefinition is a built-in resource"
        self._crds = crds

    def _terminating(self, name: str) -> dict[str, Any] | None:
        crd = self._store.find(self._crds, None, name)
        if crd is None or not crd["metadata"].get("deletionTimestamp"):
            return None
        return crd if CRD_FINALIZER in (crd["metadata"].get("finalizers") or ()) else None

    def key_for(self, rt: ResourceType, obj: Mapping[str, Any]) -> str | None:
        name = obj["metadata"]["name"] if rt.key == CRDS else f"{rt.plural}.{rt.group}" if rt.is_custom else None
        return name if name is not None and self._terminating(name) is not None else None

    def initial_keys(self) -> Iterable[str]:
        for crd in self._store.list(self._crds, None).items:
            if self._terminating(crd["metadata"]["name"]) is not None:
                yield crd["metadata"]["name"]

    def sync(self, key: str) -> None:
        """One pass: delete the instances; once none remain, release the CRD."""
        store = self._store
        with store.lock:
            crd = self._terminating(key)
            if crd is None:
                return
            spec = crd["spec"]
            rt = next((t for t in store.types() if t.key == (spec["group"], spec["names"]["plural"])), None)
            remaining = self._delete_instances(rt) if rt is not None else 0
            if remaining:
                in_progress = "CustomResource deletion is in progress"
                self._set_terminating(crd, "True", "InstanceDeletionInProgress", in_progress)
                return
            crd = self._set_terminating(crd, "False", "InstanceDeletionCompleted", "removed all instances")
            finalizers = [f for f in crd["metadata"].get("finalizers") or () if f != CRD_FINALIZER]
            store.update(self._crds, None, key, {**crd, "metadata": {**crd["metadata"], "finalizers": finalizers}})

    def _delete_instances(self, rt: ResourceType) -> int:
        """Delete every instance in every namespace; how many remain (held by their finalizers)."""
        for obj in self._store.list(rt, None).items:
            self._store.delete(rt, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        return len(self._store.list(rt, None).items)

    def _set_terminating(self, crd: dict[str, Any], status: str, reason: str, message: str) -> dict[str, Any]:
        conditions = [dict(c) for c in (crd.get("status") or {}).get("conditions") or ()]
        set_condition(conditions, "Terminating", status, reason, message)
        body = {**crd, "status": {**(crd.get("status") or {}), "conditions": conditions}}
        return self._store.update(self._crds, None, crd["metadata"]["name"], body, subresource="status")
