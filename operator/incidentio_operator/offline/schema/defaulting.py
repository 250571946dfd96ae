"""Defaulting and pruning by a CRD schema, as the API server does them on every write: plain tree rewrites."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from incidentio_operator.offline.schema.problems import join


def apply_defaults(schema: Mapping[str, Any], value: Any) -> None:
    """Fill in, in place, the defaults `schema` gives for what `value` lacks, nested defaults included."""
    if isinstance(value, dict):
        for name, child in schema.get("properties", {}).items():
            # The API server drops nulls of non-nullable fields, then defaults what is missing.
            if name in value and value[name] is None and not child.get("nullable", False):
                del value[name]
            if name not in value and "default" in child:
                value[name] = copy.deepcopy(child["default"])
            if name in value:
                apply_defaults(child, value[name])
        additional = schema.get("additionalProperties")
        if isinstance(additional, dict):
            known = schema.get("properties", {})
            for key, item in value.items():
                if key not in known:
                    apply_defaults(additional, item)
    elif isinstance(value, list) and isinstance(schema.get("items"), dict):
        for item in value:
            apply_defaults(schema["items"], item)


def prune(schema: Mapping[str, Any], value: Any, path: str, dropped: list[str]) -> Any:
    """`value` without the fields `schema` does not know; the paths of those fields are appended to `dropped`."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return value
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        kept: dict[str, Any] = {}
        for key, item in value.items():
            if key in properties:
                kept[key] = prune(properties[key], item, join(path, key), dropped)
            elif isinstance(additional, dict):
                kept[key] = prune(additional, item, f"{path}[{key}]", dropped)
            elif additional is True:
                kept[key] = item
            else:
                dropped.append(join(path, key))
        return kept
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        items = schema["items"]
        return [prune(items, item, f"{path}[{index}]", dropped) for index, item in enumerate(value)]
    return value
