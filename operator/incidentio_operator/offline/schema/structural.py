"""The structural part of a CRD schema (types, enums, lengths, formats, list types), in the API server's words."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from functools import lru_cache
from typing import Any

from jsonschema import Draft202012Validator, ValidationError
from jsonschema.protocols import Validator
from jsonschema.validators import create

from incidentio_operator.offline.schema.problems import SchemaProblem, render_json

# Stands for the field path in structural messages: a keyword function does not know where it is, and the
# API server's messages repeat the path ("spec.x in body must be of type integer").
_PATH = "\x00path\x00"

# RFC 3339, as Kubernetes' `format: date-time` accepts it (the operator writes `2026-11-26T10:00:00Z`).
_DATE_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}

_Errors = Iterator[ValidationError]


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
        supported = ", ".join(render_json(value) for value in values)
        yield ValidationError(f"Unsupported value: {render_json(instance)}: supported values: {supported}")


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
        yield ValidationError(f"Invalid value: {render_json(instance)}: {_PATH} in body should match '{pattern}'")


def _max_length(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if isinstance(instance, str) and len(instance) > limit:
        yield ValidationError(f"Too long: may not be longer than {limit}")


def _min_length(validator: Validator, limit: int, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if isinstance(instance, str) and len(instance) < limit:
        yield ValidationError(
            f"Invalid value: {render_json(instance)}: {_PATH} in body should be at least {limit} chars long"
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
            f"Invalid value: {render_json(instance)}: {_PATH} in body should be greater than or equal to {limit}"
        )


def _maximum(validator: Validator, limit: float, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if _applies(schema, instance) and isinstance(instance, int | float) and instance > limit:
        yield ValidationError(
            f"Invalid value: {render_json(instance)}: {_PATH} in body should be less than or equal to {limit}"
        )


def _format(validator: Validator, fmt: str, instance: Any, schema: Mapping[str, Any]) -> _Errors:
    if fmt == "date-time" and isinstance(instance, str) and not _DATE_TIME.match(instance):
        quoted = render_json(instance)
        yield ValidationError(f"Invalid value: {quoted}: {_PATH} in body must be of type date-time: {quoted}")
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
            yield ValidationError(f"Duplicate value: {render_json(identity)}", path=[index])
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


class StructuralSchema:
    """One CRD version's structural schema, checked the way the API server checks it before any CEL rule."""

    def __init__(self, schema: Mapping[str, Any]) -> None:
        self._validator = _StructuralValidator(dict(schema))

    def problems(self, obj: Mapping[str, Any]) -> tuple[list[SchemaProblem], bool]:
        """Why `obj` breaks the schema, and whether CEL cannot run on it (a wrong type, an out-of-range integer)."""
        problems: list[SchemaProblem] = []
        blocking = False
        for error in self._validator.iter_errors(obj):
            field = _field_path(list(error.absolute_path))
            problems.append(SchemaProblem(field, error.message.replace(_PATH, field)))
            # Like a wrong type, an integer beyond its format cannot be given to CEL.
            blocking = (
                blocking
                or error.validator == "type"
                or (error.validator == "format" and error.validator_value in _INT_RANGES)
            )
        return problems, blocking
