"""What the Kubernetes API server does with our custom objects, offline: defaulting, pruning, validation."""

from __future__ import annotations

import copy
import json
import os
import pathlib
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import celpy
import yaml
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError
from jsonschema import Draft202012Validator, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import create

CRDS_ENV = "INCIDENTIO_OPERATOR_CRDS"

# Fields every Kubernetes object has that the API server handles itself rather than by the CRD schema.
_OBJECT_FIELDS = ("apiVersion", "kind", "metadata")

# Stands for the field path in structural messages: a keyword function does not know where it is, and the
# API server's messages repeat the path ("spec.x in body must be of type integer").
_PATH = "\x00path\x00"

# RFC 3339, as Kubernetes' `format: date-time` accepts it (the operator writes `2026-11-26T10:00:00Z`).
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}

# CEL `reason` values the API server knows, and how each starts its message.
_CEL_REASONS = {
    "FieldValueInvalid": "Invalid value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
}

_OLD_SELF = re.compile(r"\boldSelf\b")

_Errors = Iterator[ValidationError]


def crds_dir() -> pathlib.Path:
    """The folder holding the CRD manifests: $INCIDENTIO_OPERATOR_CRDS, else the repository's `crds/`."""
    configured = os.environ.get(CRDS_ENV)
    if configured:
        return pathlib.Path(configured)
    return pathlib.Path(__file__).resolve().parents[3] / "crds"


def load_crds(directory: pathlib.Path | None = None) -> list[dict[str, Any]]:
    """Every CustomResourceDefinition in the YAML files of `directory` (default: `crds_dir()`)."""
    folder = directory if directory is not None else crds_dir()
    crds: list[dict[str, Any]] = []
    for path in sorted(folder.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text(encoding="utf-8")):
            if isinstance(document, dict) and document.get("kind") == "CustomResourceDefinition":
                crds.append(document)
    return crds


@dataclass(frozen=True)
class SchemaProblem:
    """One reason the API server would refuse an object, in its words."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


class _MapKey(str):
    """A key of a map (an object with `additionalProperties`), shown as `[key]` in field paths."""


def _field_path(parts: Sequence[object]) -> str:
    rendered = ""
    for part in parts:
        if isinstance(part, int):
            rendered += f"[{part}]"
        elif isinstance(part, _MapKey):
            rendered += f"[{part}]"
        else:
            rendered += f".{part}" if rendered else str(part)
    return rendered


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _has_type(value: Any, schema_type: str) -> bool:
    if schema_type == "object":
        return isinstance(value, dict)
    if schema_type == "array":
        return isinstance(value, list)
    if schema_type == "string":
        return isinstance(value, str)
    if schema_type == "boolean":
        return isinstance(value, bool)
    if schema_type == "integer":
        return (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, float) and value.is_integer()
        )
    if schema_type == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    return True


def _applies(schema: Mapping[str, Any], instance: Any) -> bool:
    """Whether a value-level keyword applies: a value of the wrong type is reported once, as a type error."""
    schema_type = schema.get("type")
    return schema_type is None or _has_type(instance, schema_type)


# Keyword functions: the jsonschema calling convention, the API server's checks and messages.


def _type(validator: Validator, schema_type: str, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if instance is None and schema.get("nullable", False):
        return
    if not _has_type(instance, schema_type):
        name = _type_name(instance)
        yield ValidationError(f'Invalid value: "{name}": {_PATH} in body must be of type {schema_type}: "{name}"')


def _enum(validator: Validator, values: list[Any], instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if _applies(schema, instance) and instance not in values:
        supported = ", ".join(_json(value) for value in values)
        yield ValidationError(f"Unsupported value: {_json(instance)}: supported values: {supported}")


def _required(validator: Validator, names: list[str], instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if isinstance(instance, dict):
        for name in names:
            if name not in instance:
                yield ValidationError("Required value", path=[name])


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


def _pattern(validator: Validator, pattern: str, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if isinstance(instance, str) and not _regex(pattern).search(instance):
        yield ValidationError(f"Invalid value: {_json(instance)}: {_PATH} in body should match '{pattern}'")


def _max_length(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if isinstance(instance, str) and len(instance) > limit:
        yield ValidationError(f"Too long: may not be longer than {limit}")


def _min_length(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if isinstance(instance, str) and len(instance) < limit:
        yield ValidationError(
            f"Invalid value: {_json(instance)}: {_PATH} in body should be at least {limit} chars long"
        )


def _max_items(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if isinstance(instance, list) and len(instance) > limit:
        yield ValidationError(f"Too many: {len(instance)}: must have at most {limit} items")


def _min_items(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if isinstance(instance, list) and len(instance) < limit:
        yield ValidationError(f"Invalid value: {len(instance)}: {_PATH} in body should have at least {limit} items")


def _max_properties(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if isinstance(instance, dict) and len(instance) > limit:
        yield ValidationError(f"Too many: {len(instance)}: must have at most {limit} items")


def _minimum(validator: Validator, limit: float, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if _applies(schema, instance) and isinstance(instance, int | float) and instance < limit:
        yield ValidationError(
            f"Invalid value: {_json(instance)}: {_PATH} in body should be greater than or equal to {limit}"
        )


def _maximum(validator: Validator, limit: float, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if _applies(schema, instance) and isinstance(instance, int | float) and instance > limit:
        yield ValidationError(
            f"Invalid value: {_json(instance)}: {_PATH} in body should be less than or equal to {limit}"
        )


def _format(validator: Validator, fmt: str, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if fmt == "date-time" and isinstance(instance, str) and not _DATE_TIME.match(instance):
        yield ValidationError(
            f"Invalid value: {_json(instance)}: {_PATH} in body must be of type date-time: {_json(instance)}"
        )
    elif fmt in _INT_RANGES and _applies(schema, instance) and isinstance(instance, int):
        low, high = _INT_RANGES[fmt]
        if not low <= instance <= high:
            yield ValidationError(f"Invalid value: {instance}: {_PATH} in body must be of type {fmt}")


def _additional_properties(validator: Any, item_schema: Any, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    # `descend` is how jsonschema's own keywords recurse, though its Validator protocol does not declare it.
    if not isinstance(instance, dict) or not isinstance(item_schema, dict):
        return
    known = schema.get("properties", {})
    for key, value in instance.items():
        if key not in known:
            yield from validator.descend(value, item_schema, path=_MapKey(key))


def _list_type(validator: Validator, list_type: str, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if not isinstance(instance, list) or list_type not in ("set", "map"):
        return
    keys: list[str] = schema.get("x-kubernetes-list-map-keys", [])
    seen: list[Any] = []
    for index, item in enumerate(instance):
        identity = (
            {key: item.get(key) for key in keys if key in item}
            if list_type == "map" and isinstance(item, dict)
            else item
        )
        if identity in seen:
            yield ValidationError(f"Duplicate value: {_json(identity)}", path=[index])
        else:
            seen.append(identity)


_StructuralValidator = create(
    meta_schema={"$id": "urn:incidentio-operator:kubernetes-structural-schema"},
    validators={
        "type": _type,
        "enum": _enum,
        "required": _required,
        "pattern": _pattern,
        "maxLength": _max_length,
        "minLength": _min_length,
        "maxItems": _max_items,
        "minItems": _min_items,
        "maxProperties": _max_properties,
        "minimum": _minimum,
        "maximum": _maximum,
        "format": _format,
        "properties": Draft202012Validator.VALIDATORS["properties"],
        "items": Draft202012Validator.VALIDATORS["items"],
        "additionalProperties": _additional_properties,
        "x-kubernetes-list-type": _list_type,
    },
    type_checker=Draft202012Validator.TYPE_CHECKER,
)


# CEL: compiled once per CRD into a tree that mirrors the schema where it has rules.


@dataclass(frozen=True, eq=False)
class _Rule:
    rule: str
    program: celpy.Runner
    message: str
    field_path: str
    reason: str
    transition: bool


@dataclass
class _RuleNode:
    schema_type: str
    rules: list[_Rule]
    properties: dict[str, _RuleNode]
    items: _RuleNode | None
    values: _RuleNode | None
    map_keys: tuple[str, ...]


_CEL = celpy.Environment()


def _compile_rules(schema: Mapping[str, Any]) -> _RuleNode | None:
    """The rules of `schema` and below, or None when there are none (so that walk skips the subtree)."""
    rules = [
        _Rule(
            rule=spec["rule"],
            program=_CEL.program(_CEL.compile(spec["rule"])),
            message=spec.get("message") or f"failed rule: {spec['rule']}",
            field_path=spec.get("fieldPath", ""),
            reason=spec.get("reason", "FieldValueInvalid"),
            transition=bool(_OLD_SELF.search(spec["rule"])),
        )
        for spec in schema.get("x-kubernetes-validations", [])
    ]
    properties = {
        name: node
        for name, child in schema.get("properties", {}).items()
        if (node := _compile_rules(child)) is not None
    }
    items = _compile_rules(schema["items"]) if isinstance(schema.get("items"), dict) else None
    additional = schema.get("additionalProperties")
    values = _compile_rules(additional) if isinstance(additional, dict) else None
    if not rules and not properties and items is None and values is None:
        return None
    return _RuleNode(
        schema_type=str(schema.get("type", "object")),
        rules=rules,
        properties=properties,
        items=items,
        values=values,
        map_keys=(
            tuple(schema.get("x-kubernetes-list-map-keys", [])) if schema.get("x-kubernetes-list-type") == "map" else ()
        ),
    )


_ABSENT = object()


def _correlated_item(item: Any, old_list: Any, keys: tuple[str, ...]) -> Any:
    """The old list's item with the same map keys: only `map` lists correlate items across an update."""
    if not keys or not isinstance(old_list, list) or not isinstance(item, dict):
        return _ABSENT
    identity = [item.get(key) for key in keys]
    for old_item in old_list:
        if isinstance(old_item, dict) and [old_item.get(key) for key in keys] == identity:
            return old_item
    return _ABSENT


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def _child(old: Any, key: str) -> Any:
    return old[key] if isinstance(old, dict) and key in old else _ABSENT


def _evaluate_rules(node: _RuleNode, value: Any, old: Any, path: str, problems: list[SchemaProblem]) -> None:
    if node.rules:
        self_json = _json(value)
        old_json = None if old is _ABSENT else _json(old)
        for rule in node.rules:
            if rule.transition and old_json is None:
                continue
            problem = _problem(rule, _outcome(rule, self_json, old_json), node.schema_type, path)
            if problem is not None:
                problems.append(problem)
    if isinstance(value, dict):
        for name, child in node.properties.items():
            if name in value:
                _evaluate_rules(child, value[name], _child(old, name), _join(path, name), problems)
        if node.values is not None:
            for key, item in value.items():
                if key not in node.properties:
                    _evaluate_rules(node.values, item, _child(old, key), f"{path}[{key}]", problems)
    if isinstance(value, list) and node.items is not None:
        for index, item in enumerate(value):
            old_item = _correlated_item(item, old, node.map_keys)
            _evaluate_rules(node.items, item, old_item, f"{path}[{index}]", problems)


# CEL is pure, and celpy takes a few hundred microseconds a rule: the API stand-in writes the same spec
# again with every status update, so outcomes are remembered by the JSON of self and oldSelf.
@lru_cache(maxsize=4096)
def _outcome(rule: _Rule, self_json: str, old_json: str | None) -> bool | str:
    """True or False, or the evaluation error's text."""
    try:
        activation = {"self": json_to_cel(json.loads(self_json))}
        if old_json is not None:
            activation["oldSelf"] = json_to_cel(json.loads(old_json))
        return bool(rule.program.evaluate(activation))
    except CELEvalError as error:
        # celpy appends its whole activation to some messages; the API server's say only what went wrong.
        return str(error.args[0]).split(" (in activation", 1)[0]
    except (ValueError, TypeError) as error:
        # A value CEL cannot represent (an integer beyond int64, say) refuses the object; it must not crash.
        return str(error)


def _problem(rule: _Rule, outcome: bool | str, schema_type: str, path: str) -> SchemaProblem | None:
    field = f"{path}{rule.field_path}".lstrip(".")
    if outcome is True:
        return None
    if isinstance(outcome, str):
        return SchemaProblem(field, f'Invalid value: "{schema_type}": {outcome} evaluating rule: {rule.rule}')
    prefix = _CEL_REASONS.get(rule.reason, "Invalid value")
    if prefix == "Invalid value":
        return SchemaProblem(field, f'Invalid value: "{schema_type}": {rule.message}')
    return SchemaProblem(field, f"{prefix}: {rule.message}")


# Defaulting and pruning walk the schema directly: both are plain tree rewrites.


def _default(schema: Mapping[str, Any], value: Any) -> None:
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            # The API server drops nulls of non-nullable fields, then defaults what is missing.
            if name in value and value[name] is None and not child.get("nullable", False):
                del value[name]
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                _default(child, value[name])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            known = schema.get("properties", {})
            for key, item in value.items():
                if key not in known:
                    _default(additional, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            _default(schema["items"], item)


def _prune(schema: Mapping[str, Any], value: Any, path: str, dropped: list[str]) -> Any:
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if key in properties:
                kept[key] = _prune(properties[key], item, _join(path, key), dropped)
            elif isinstance(additional, dict):
                kept[key] = _prune(additional, item, f"{path}[{key}]", dropped)
            elif additional is True:
                kept[key] = item
            else:
                dropped.append(_join(path, key))
        return kept
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = schema["items"]
        return [_prune(items, item, f"{path}[{index}]", dropped) for index, item in enumerate(value)]
    return value


class ObjectValidator:
    """The API server's handling of one kind at one version: defaults, pruning and validation."""

    _cache: ClassVar[dict[tuple[int, str | None], tuple[Mapping[str, Any], ObjectValidator]]] = {}

    def __init__(self, kind: str, api_version: str, plural: str, schema: Mapping[str, Any]) -> None:
        self.kind = kind
        self.api_version = api_version
        self.plural = plural
        self.schema = schema
        self._structural = _StructuralValidator(dict(schema))
        self._rules = _compile_rules(schema)

    @classmethod
    def from_crd(cls, crd: Mapping[str, Any], version: str | None = None) -> ObjectValidator:
        """The validator for `version` of `crd`, by default its storage version; built once per CRD object."""
        key = (id(crd), version)
        cached = cls._cache.get(key)
        # Keyed on identity, so the CRD object is kept alive to stop its id from being reused.
        if cached is not None and cached[0] is crd:
            return cached[1]
        spec = crd["spec"]
        versions = spec["versions"]
        chosen = next(
            (entry for entry in versions if (entry["name"] == version if version else entry.get("storage"))),
            None,
        )
        if chosen is None:
            raise ValueError(f"{crd['metadata']['name']} has no version {version or '(storage)'}")
        validator = cls(
            kind=spec["names"]["kind"],
            api_version=f"{spec['group']}/{chosen['name']}",
            plural=spec["names"]["plural"],
            schema=chosen["schema"]["openAPIV3Schema"],
        )
        cls._cache[key] = (crd, validator)
        return validator

    def apply_defaults(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `obj` with the schema's defaults filled in, nested defaults included."""
        defaulted = copy.deepcopy(dict(obj))
        _default(self.schema, defaulted)
        return defaulted

    def prune(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """A copy of `obj` without the fields the schema does not know."""
        return self._pruned(obj, [])

    def unknown_fields(self, obj: Mapping[str, Any]) -> list[str]:
        """Paths of the fields `prune` would drop; `kubectl apply` refuses these as unknown fields."""
        dropped: list[str] = []
        self._pruned(obj, dropped)
        return dropped

    def _pruned(self, obj: Mapping[str, Any], dropped: list[str]) -> dict[str, Any]:
        # The API server handles apiVersion, kind and metadata itself, whatever the CRD says about them.
        body = {key: value for key, value in obj.items() if key not in _OBJECT_FIELDS}
        pruned: dict[str, Any] = _prune(self.schema, body, "", dropped)
        for key in _OBJECT_FIELDS:
            if key in obj:
                pruned[key] = copy.deepcopy(obj[key])
        return pruned

    def validate(self, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[SchemaProblem]:
        """Why the API server would refuse `obj` (created, or updated from `old`); empty if it would not."""
        problems: list[SchemaProblem] = []
        if obj.get("kind") != self.kind:
            problems.append(SchemaProblem("kind", f"Invalid value: {_json(obj.get('kind'))}: must be {self.kind}"))
        if obj.get("apiVersion") != self.api_version:
            problems.append(
                SchemaProblem(
                    "apiVersion", f"Invalid value: {_json(obj.get('apiVersion'))}: must be {self.api_version}"
                )
            )
        blocking = False
        for error in self._structural.iter_errors(obj):
            field = _field_path(list(error.absolute_path))
            problems.append(SchemaProblem(field, error.message.replace(_PATH, field)))
            # Like a wrong type, an integer beyond its format cannot be given to CEL.
            blocking = (
                blocking
                or error.validator == "type"
                or (error.validator == "format" and error.validator_value in _INT_RANGES)
            )
        if self._rules is None:
            return problems
        # Like the API server, CEL rules only run on an object whose types are right.
        if blocking:
            problems.append(
                SchemaProblem(
                    "",
                    "some validation rules were not checked because the object was invalid; "
                    "correct the existing errors to complete validation",
                )
            )
            return problems
        _evaluate_rules(self._rules, obj, old if old is not None else _ABSENT, "", problems)
        return problems


@lru_cache(maxsize=8)
def _default_crds(directory: pathlib.Path) -> tuple[dict[str, Any], ...]:
    return tuple(load_crds(directory))


def validator_for(
    api_version: str, kind: str, crds: Sequence[Mapping[str, Any]] | None = None
) -> ObjectValidator | None:
    """The validator for objects of `kind` at `api_version`, or None when it is not one of the given CRDs'."""
    group, _, version = api_version.rpartition("/")
    candidates = crds if crds is not None else _default_crds(crds_dir())
    for crd in candidates:
        spec = crd.get("spec", {})
        if spec.get("group") != group or spec.get("names", {}).get("kind") != kind:
            continue
        served = [entry["name"] for entry in spec.get("versions", []) if entry.get("served")]
        if version in served:
            return ObjectValidator.from_crd(crd, version)
    return None
