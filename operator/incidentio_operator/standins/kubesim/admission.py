"""What the API server checks and fills in before a write is stored.

Names, the namespace lifecycle (no new content in a missing or terminating namespace), the kind-specific
strategies the operator meets (Secret stringData, Namespace defaults, CRD status), and the pruning,
defaulting and validation of custom objects by their CRD's schema.
"""

from __future__ import annotations

import base64
import copy
import datetime
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from . import errors
from .errors import ApiError
from .resources import CRD_GROUP, ResourceType

_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# The namespace lifecycle admission plugin's wording (apiserver/pkg/admission/plugin/namespace/lifecycle).
_TERMINATING = "unable to create new content in namespace {0} because it is being terminated"
# core/v1 `NamespaceTerminatingCause`: the cause the plugin adds to that refusal.
_TERMINATING_CAUSE = "NamespaceTerminating"


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


def new_object(rt: ResourceType, body: Mapping[str, Any]) -> dict[str, Any]:
    """A private copy of a request body, with the kind and apiVersion of the resource it was sent to."""
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
    meta = obj.setdefault("metadata", {})
    if not isinstance(meta, dict):
        raise errors.bad_request("metadata must be an object")
    # ObjectMeta is a typed struct on the real server: a null field is the same as a missing one.
    for key in [key for key, value in meta.items() if value is None]:
        del meta[key]
    return obj


def admit_to_namespace(
    rt: ResourceType,
    namespace: str | None,
    obj: dict[str, Any],
    find_namespace: Callable[[str], Mapping[str, Any] | None],
) -> None:
    """Settle metadata.namespace of an object to create, and refuse creates the namespace lifecycle refuses.

    A missing namespace is 404 NotFound; a namespace in phase Terminating is 403 Forbidden with the
    `NamespaceTerminating` cause, for every kind (Events included), as the NamespaceLifecycle admission
    plugin answers (https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#namespacelifecycle).
    """
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
    namespace_obj = find_namespace(namespace)
    if namespace_obj is None:
        raise errors.not_found("namespaces", "", namespace)
    if (namespace_obj.get("status") or {}).get("phase") == "Terminating":
        # Before a generated name exists the plugin names the object by its generateName (admission.NewForbidden).
        name = meta.get("name") or meta.get("generateName") or "Unknown"
        cause = {
            "reason": _TERMINATING_CAUSE,
            "message": f"namespace {namespace} is being terminated",
            "field": "metadata.namespace",
        }
        raise errors.forbidden(rt.plural, rt.group, name, _TERMINATING.format(namespace), [cause])


def admit_custom_resource(rt: ResourceType, crd: Mapping[str, Any] | None) -> None:
    """405 for a create of a custom resource whose CRD is being deleted, as the apiextensions server answers.

    Source: apiextensions-apiserver customresource_handler.go ("not allowed while custom resource definition
    is terminating").
    """
    if crd is not None and crd["metadata"].get("deletionTimestamp"):
        raise ApiError(
            405,
            "MethodNotAllowed",
            "create not allowed while custom resource definition is terminating",
            {"group": rt.group, "kind": rt.plural},
        )


def check_name(rt: ResourceType, obj: Mapping[str, Any]) -> None:
    """422 Invalid unless metadata.name is a DNS subdomain (a DNS label for namespaces)."""
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


class Strategies:
    """Kind-specific server-side behaviour, then the CRD schema's pruning, defaulting and validation."""

    def __init__(self, validator_factory: ValidatorFactory | None) -> None:
        self._validator_factory = validator_factory
        self._validators: dict[tuple[str, str], ObjectValidatorLike] = {}

    def forget(self, key: tuple[str, str]) -> None:
        """Drop the cached validator of a kind whose CRD changed or went away."""
        self._validators.pop(key, None)

    def _validator(self, rt: ResourceType) -> ObjectValidatorLike | None:
        if rt.crd is None or self._validator_factory is None:
            return None
        validator = self._validators.get(rt.key)
        if validator is None:
            validator = self._validators[rt.key] = self._validator_factory(rt.crd)
        return validator

    def shape(self, rt: ResourceType, obj: dict[str, Any], old: dict[str, Any] | None) -> dict[str, Any]:
        """The object as it will be stored; 422 Invalid with the schema's problems."""
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
            _shape_crd(obj, old)
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


def _shape_crd(obj: dict[str, Any], old: dict[str, Any] | None) -> None:
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
        # Re-applying an unchanged CRD must stay a no-op, as it is on a real cluster; status writes stand.
        obj["status"] = obj.get("status") or old_status
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
