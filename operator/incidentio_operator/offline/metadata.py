"""What the API server checks of any object's metadata: the name by kind, namespace, labels and annotations.

The checks and messages are those of k8s.io/apimachinery's `ValidateObjectMetaAccessor` and
`ValidateAnnotations` (pkg/api/validation/objectmeta.go) and `ValidateLabels` (pkg/apis/meta/v1/validation/
validation.go), rendered as field errors render (pkg/util/validation/field/errors.go): `metadata.labels:
Invalid value: "data eng": a valid label must be ...`. Name rules per kind are Kubernetes' own
(pkg/apis/core/validation, pkg/apis/rbac/validation); custom resources' names are DNS subdomains
(apiextensions-apiserver's customResourceStrategy.Validate).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from incidentio_operator.offline.names import (
    NameRule,
    as_prefix,
    go_quote,
    is_dns1035_label,
    is_dns1123_label,
    is_dns1123_subdomain,
    is_label_key,
    is_label_value,
    is_path_segment_name,
)
from incidentio_operator.offline.schema import SchemaProblem

# apimachinery's TotalAnnotationSizeLimitB: keys and values together, in bytes.
TOTAL_ANNOTATION_SIZE_LIMIT = 256 * (1 << 10)
_ANNOTATIONS_TOO_LONG = f"Too long: may not be more than {TOTAL_ANNOTATION_SIZE_LIMIT} bytes"

_RBAC_GROUP = "rbac.authorization.k8s.io"
_RBAC_KINDS = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")

# Kinds whose names follow another rule than the DNS subdomain that custom resources and most built-in kinds use.
_NAME_RULES: dict[tuple[str, str], NameRule] = {
    ("", "Namespace"): is_dns1123_label,  # ValidateNamespaceName
    ("", "Service"): is_dns1035_label,  # ValidateServiceName: the name becomes a DNS label of the cluster domain
    # ValidateRBACName: RBAC names only have to fit in a URL path segment.
    **{(_RBAC_GROUP, kind): is_path_segment_name for kind in _RBAC_KINDS},
}

# JSON's names for what YAML may hold where Go wants another type, as Go's decoder names them in its errors.
_JSON_TYPES = ((str, "string"), (bool, "bool"), (int, "number"), (float, "number"), (list, "array"), (dict, "object"))


def name_rule(group: str, kind: str) -> NameRule:
    """How the API server checks the name of an object of `kind` in API group `group` ("" for the core group)."""
    return _NAME_RULES.get((group, kind), is_dns1123_subdomain)


def _invalid(field: str, value: str, message: str) -> SchemaProblem:
    return SchemaProblem(field, f"Invalid value: {go_quote(value)}: {message}")


def _wrong_type(value: Any, field: str, go_type: str, owner: str = "ObjectMeta") -> SchemaProblem:
    """The decoding error kubectl reports for a YAML value of the wrong type, e.g. a label value `true`."""
    found = next((name for kind, name in _JSON_TYPES if isinstance(value, kind)), type(value).__name__)
    return SchemaProblem(field, f"cannot unmarshal {found} into Go struct field {owner}.{field} of type {go_type}")


def _not_a_string(value: Any, field: str) -> SchemaProblem | None:
    return None if value is None or isinstance(value, str) else _wrong_type(value, field, "string")


def _name_problems(metadata: Mapping[str, Any], rule: NameRule) -> Iterator[SchemaProblem]:
    name, generate_name = metadata.get("name"), metadata.get("generateName")
    for field, value in (("metadata.name", name), ("metadata.generateName", generate_name)):
        if (problem := _not_a_string(value, field)) is not None:
            yield problem
            return
    if generate_name:
        for message in as_prefix(rule)(generate_name):
            yield _invalid("metadata.generateName", generate_name, message)
    if name:
        for message in rule(name):
            yield _invalid("metadata.name", name, message)
    elif not generate_name:
        yield SchemaProblem("metadata.name", "Required value: name or generateName is required")


def _namespace_problems(metadata: Mapping[str, Any]) -> Iterator[SchemaProblem]:
    namespace = metadata.get("namespace")
    if (problem := _not_a_string(namespace, "metadata.namespace")) is not None:
        yield problem
    elif not namespace:
        yield SchemaProblem("metadata.namespace", "Required value")
    else:
        for message in is_dns1123_label(namespace):
            yield _invalid("metadata.namespace", namespace, message)


def _string_map(metadata: Mapping[str, Any], name: str) -> tuple[dict[str, str], list[SchemaProblem]]:
    """The string entries of metadata.`name` (null values are "", as Go decodes them), and why others are not."""
    field = f"metadata.{name}"
    raw = metadata.get(name)
    if raw is None:
        return {}, []
    if not isinstance(raw, Mapping):
        return {}, [_wrong_type(raw, field, "map[string]string")]
    problems = [problem for value in raw.values() if (problem := _not_a_string(value, field)) is not None]
    entries = {str(key): value or "" for key, value in raw.items() if value is None or isinstance(value, str)}
    return entries, problems


def _label_problems(metadata: Mapping[str, Any]) -> Iterator[SchemaProblem]:
    labels, problems = _string_map(metadata, "labels")
    yield from problems
    for key, value in labels.items():
        for message in is_label_key(key):
            yield _invalid("metadata.labels", key, message)
        for message in is_label_value(value):
            yield _invalid("metadata.labels", value, message)


def _annotation_problems(metadata: Mapping[str, Any]) -> Iterator[SchemaProblem]:
    annotations, problems = _string_map(metadata, "annotations")
    yield from problems
    for key in annotations:
        # Annotation keys follow the label key rule except that case does not matter.
        for message in is_label_key(key.lower()):
            yield _invalid("metadata.annotations", key, message)
    size = sum(len(key.encode("utf-8")) + len(value.encode("utf-8")) for key, value in annotations.items())
    if size > TOTAL_ANNOTATION_SIZE_LIMIT:
        # field.TooLong: the message names the limit, never the value.
        yield SchemaProblem("metadata.annotations", _ANNOTATIONS_TOO_LONG)


def metadata_problems(body: Mapping[str, Any], namespaced: bool) -> list[SchemaProblem]:
    """Why the API server would refuse `body` for its metadata; `namespaced` says whether its kind has namespaces."""
    api_version = str(body.get("apiVersion") or "")
    group = api_version.rpartition("/")[0]
    metadata = body.get("metadata")
    if metadata is None:
        metadata = {}
    if not isinstance(metadata, Mapping):
        return [_wrong_type(metadata, "metadata", "v1.ObjectMeta", owner=str(body.get("kind") or "Object"))]
    rule = name_rule(group, str(body.get("kind") or ""))
    problems = list(_name_problems(metadata, rule))
    if namespaced:
        problems += _namespace_problems(metadata)
    problems += _label_problems(metadata)
    problems += _annotation_problems(metadata)
    return problems
