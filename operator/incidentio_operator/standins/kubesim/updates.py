"""What a write keeps, changes and refuses of a stored object: create, replace and patch bodies, the status and
finalize subresources, metadata.generation, and the marks a deletion leaves on an object with finalizers.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from typing import Any

from . import errors
from .admission import new_object, now_rfc3339
from .patches import json_patch, merge_patch
from .resources import CRD_GROUP, ResourceType

NAMESPACES = ("", "namespaces")
CRDS = (CRD_GROUP, "customresourcedefinitions")
IMMORTAL_NAMESPACES = ("default", "kube-system", "kube-public")
# The finalizer the CRD registry adds on delete, for the CRD finalizer to delete the instances first.
CRD_FINALIZER = "customresourcecleanup.apiextensions.k8s.io"
SYSTEM_FIELDS = ("uid", "creationTimestamp", "deletionTimestamp", "deletionGracePeriodSeconds", "generation")
# Same alphabet as the real server's generateName suffixes (no vowels, no look-alike digits).
_SUFFIX_ALPHABET = "bcdfghjklmnpqrstvwxz2456789"


def prepare_create(rt: ResourceType, obj: dict[str, Any]) -> None:
    """Name the object (generateName gets a random suffix) and drop what only the server may set."""
    meta = obj["metadata"]
    if meta.get("resourceVersion"):
        raise errors.status_error(500, "resourceVersion should not be set on objects to be created")
    if not meta.get("name"):
        if not meta.get("generateName"):
            raise errors.invalid(
                rt.kind, rt.group, "", [("metadata.name", "Required value: name or generateName is required")]
            )
        meta["name"] = meta["generateName"] + "".join(random.choices(_SUFFIX_ALPHABET, k=5))
    for key in (*SYSTEM_FIELDS, "managedFields", "selfLink"):
        meta.pop(key, None)
    if rt.has_status and rt.key != NAMESPACES:
        obj.pop("status", None)


def check_replace(rt: ResourceType, old: Mapping[str, Any], new: Mapping[str, Any], *, require_rv: bool) -> None:
    """PUT preconditions: the URL's name, and metadata.resourceVersion (required for custom resources)."""
    meta, name = new["metadata"], old["metadata"]["name"]
    if meta.get("name", name) != name:
        raise errors.bad_request(f"the name of the object ({meta['name']}) does not match the name on the URL ({name})")
    expected = meta.get("resourceVersion")
    if not expected and require_rv and rt.is_custom:
        problem = ("metadata.resourceVersion", "Invalid value: 0x0: must be specified for an update")
        raise errors.invalid(rt.kind, rt.group, name, [problem])
    if expected and expected != old["metadata"]["resourceVersion"]:
        raise errors.conflict(rt.plural, rt.group, name)


def apply_patch(rt: ResourceType, old: dict[str, Any], content_type: str, patch: Any) -> dict[str, Any]:
    """The object a PATCH asks for; a resourceVersion in the patch is a precondition (409 Conflict)."""
    name = old["metadata"]["name"]
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
    return new_object(rt, patched)


def merge_update(rt: ResourceType, old: dict[str, Any], new: dict[str, Any], subresource: str | None) -> dict[str, Any]:
    """The object an update stores: a status write changes status only; a main write all but status.

    A main-resource write replaces metadata but the system fields, so finalizers left out of the body are
    removed; status in the body is ignored where status is a subresource
    (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource).
    """
    if subresource == "status":
        status = new.get("status")
        kept = {k: v for k, v in old.items() if k != "status"}
        return kept if status is None else {**kept, "status": status}
    if subresource == "finalize":
        finalizers = (new.get("spec") or {}).get("finalizers") or []
        return {**old, "spec": {**(old.get("spec") or {}), "finalizers": finalizers}}
    old_meta, meta = old["metadata"], new["metadata"]
    for key in (*SYSTEM_FIELDS, "namespace", "name"):
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
    if rt.key == NAMESPACES:
        # spec.finalizers change only through the finalize subresource (namespace strategy PrepareForUpdate).
        new["spec"] = old.get("spec", {})
    added = set(meta.get("finalizers") or ()) - set(old_meta.get("finalizers") or ())
    if old_meta.get("deletionTimestamp") and added:
        problem = (
            "Forbidden: no new finalizers can be added if the object is being deleted, "
            f"found new finalizers {sorted(added)}"
        )
        raise errors.invalid(rt.kind, rt.group, old_meta["name"], [("metadata.finalizers", problem)])
    return new


def unchanged(old: Mapping[str, Any], new: Mapping[str, Any]) -> bool:
    """Whether a write changes nothing but would bump the resourceVersion (the real server skips it)."""

    def without_rv(obj: Mapping[str, Any]) -> dict[str, Any]:
        return {**obj, "metadata": {k: v for k, v in obj["metadata"].items() if k != "resourceVersion"}}

    return without_rv(old) == without_rv(new)


def next_generation(rt: ResourceType, old: Mapping[str, Any], new: Mapping[str, Any]) -> int | None:
    """metadata.generation after the write: it moves when anything but metadata (and status subresource) does."""
    if not rt.tracks_generation:
        return None
    skipped = ("metadata", "status") if rt.has_status else ("metadata",)
    if {k: v for k, v in new.items() if k not in skipped} == {k: v for k, v in old.items() if k not in skipped}:
        return None
    return int(old["metadata"].get("generation", 0)) + 1


def finalized(rt: ResourceType, obj: Mapping[str, Any]) -> bool:
    """Whether nothing holds a terminating object any more (a namespace also waits on spec.finalizers).

    Source: apiserver registry `ShouldDeleteDuringUpdate` and namespace storage `ShouldDeleteNamespaceDuringUpdate`.
    """
    if obj["metadata"].get("finalizers"):
        return False
    return rt.key != NAMESPACES or not (obj.get("spec") or {}).get("finalizers")


def marked_for_deletion(rt: ResourceType, old: dict[str, Any]) -> dict[str, Any]:
    """An object with finalizers, as a DELETE leaves it: deletionTimestamp set, generation moved on.

    The same object when it is already marked: deleting it again changes nothing
    (https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/).
    """
    if old["metadata"].get("deletionTimestamp"):
        return old
    meta = {**old["metadata"], "deletionTimestamp": now_rfc3339(), "deletionGracePeriodSeconds": 0}
    if rt.tracks_generation:
        meta["generation"] = old["metadata"].get("generation", 0) + 1
    return {**old, "metadata": meta}


def registry_deletion(rt: ResourceType, old: dict[str, Any]) -> dict[str, Any] | None:
    """What the namespace and CRD registries' own Delete makes of a first DELETE; None for the generic rules.

    A namespace is marked Terminating for the namespace controller (pkg/registry/core/namespace/storage,
    `Delete`): default, kube-system and kube-public cannot be deleted (NamespaceLifecycle admission), and a
    second DELETE while content remains is 409 Conflict. A CRD gets the cleanup finalizer and a Terminating
    condition for the CRD finalizer to delete its instances (apiextensions registry customresourcedefinition,
    `Delete`).
    """
    meta = old["metadata"]
    if rt.key == NAMESPACES:
        if meta["name"] in IMMORTAL_NAMESPACES:
            raise errors.forbidden(rt.plural, rt.group, meta["name"], "this namespace may not be deleted")
        if not meta.get("deletionTimestamp"):
            return {
                **old,
                "metadata": {**meta, "deletionTimestamp": now_rfc3339()},
                "status": {**old.get("status", {}), "phase": "Terminating"},
            }
        if (old.get("spec") or {}).get("finalizers"):
            raise errors.conflict(
                rt.plural,
                rt.group,
                meta["name"],
                "The system is ensuring all content is removed from this namespace.  "
                "Upon completion, this namespace will automatically be purged by the system.",
            )
    if rt.key == CRDS and not meta.get("deletionTimestamp"):
        finalizers = list(meta.get("finalizers") or ())
        status = {**old.get("status", {}), "conditions": [dict(c) for c in old.get("status", {}).get("conditions", ())]}
        set_condition(
            status["conditions"],
            "Terminating",
            "True",
            "InstanceDeletionPending",
            "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
        )
        if CRD_FINALIZER not in finalizers:
            finalizers.append(CRD_FINALIZER)
        marked_meta = {**meta, "deletionTimestamp": now_rfc3339(), "finalizers": finalizers}
        return {**old, "metadata": marked_meta, "status": status}
    return None


def set_condition(
    conditions: list[dict[str, Any]], condition_type: str, status: str, reason: str, message: str
) -> None:
    """Set one condition in place, API-convention style: lastTransitionTime moves only when status does."""
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
