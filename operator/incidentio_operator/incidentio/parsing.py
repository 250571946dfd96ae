"""Tolerant reading of incident.io's JSON: what the product needs is checked, everything else is ignored."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class ResponseShapeError(ValueError):
    """A response lacks something the product needs, or has it in the wrong type."""


def object_of(data: object, where: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise ResponseShapeError(f"{where} is not an object")
    return data


def member_of(data: object, key: str) -> dict[str, Any]:
    """The object a response wraps under ``key``: ``{"<key>": {...}}`` → ``{...}``."""
    return object_of(object_of(data, "response").get(key), key)


def required_str(data: dict[str, Any], key: str, where: str) -> str:
    value = data.get(key)
    if not isinstance(value, str) or not value:
        raise ResponseShapeError(f"{where}.{key} is missing or not a string")
    return value


def optional_str(data: dict[str, Any], key: str) -> str | None:
    value = data.get(key)
    return value if isinstance(value, str) else None


def optional_int(data: dict[str, Any], key: str) -> int | None:
    value = data.get(key)
    # bool is an int subclass; a boolean count or rank is nonsense and should not read as 0 or 1.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def list_of(data: object, key: str, parse: Callable[[object], T], where: str = "response") -> list[T]:
    """Parse ``data[key]``, a list, item by item: ``{"<key>": [...]}`` → ``[parse(item), ...]``."""
    body = object_of(data, where)
    items = body.get(key)
    if not isinstance(items, list):
        raise ResponseShapeError(f"{where}.{key} is missing or not a list")
    return [parse(item) for item in items]
