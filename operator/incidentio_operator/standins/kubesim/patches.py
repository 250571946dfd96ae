"""JSON merge patch (RFC 7386) and JSON patch (RFC 6902), applied to copies of stored objects."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from .errors import ApiError, bad_request


def merge_patch(target: Any, patch: Any) -> Any:
    """The result of merging `patch` into `target`; neither argument is modified."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def _unprocessable(message: str) -> ApiError:
    # The real server answers a patch that cannot be applied (a failed `test` included) with 422.
    return ApiError(422, "Invalid", f"the server rejected our request due to an error in our request: {message}")


def _pointer(path: str) -> list[str]:
    if path == "":
        return []
    if not path.startswith("/"):
        raise bad_request(f"invalid JSON pointer: {path!r}")
    return [part.replace("~1", "/").replace("~0", "~") for part in path[1:].split("/")]


def _index(container: list[Any], token: str, *, for_insert: bool) -> int:
    if for_insert and token == "-":
        return len(container)
    if not token.isdigit():
        raise _unprocessable(f"invalid array index {token!r}")
    index = int(token)
    limit = len(container) if for_insert else len(container) - 1
    if index > limit:
        raise _unprocessable(f"array index {index} out of bounds")
    return index


def _parent(doc: Any, parts: list[str]) -> Any:
    node = doc
    for token in parts[:-1]:
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list):
            node = node[_index(node, token, for_insert=False)]
        else:
            raise _unprocessable(f"path not found: /{'/'.join(parts)}")
    return node


def _get(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        return doc
    parent = _parent(doc, parts)
    if isinstance(parent, dict) and parts[-1] in parent:
        return parent[parts[-1]]
    if isinstance(parent, list):
        return parent[_index(parent, parts[-1], for_insert=False)]
    raise _unprocessable(f"path not found: {path}")


def _remove(doc: Any, path: str) -> Any:
    parts = _pointer(path)
    if not parts:
        raise _unprocessable("cannot remove the whole document")
    parent = _parent(doc, parts)
    if isinstance(parent, dict) and parts[-1] in parent:
        return parent.pop(parts[-1])
    if isinstance(parent, list):
        return parent.pop(_index(parent, parts[-1], for_insert=False))
    raise _unprocessable(f"path not found: {path}")


def _add(doc: Any, path: str, value: Any, *, replace: bool) -> Any:
    parts = _pointer(path)
    if not parts:
        return value
    parent = _parent(doc, parts)
    token = parts[-1]
    if isinstance(parent, dict):
        if replace and token not in parent:
            raise _unprocessable(f"path not found: {path}")
        parent[token] = value
    elif isinstance(parent, list):
        if replace:
            parent[_index(parent, token, for_insert=False)] = value
        else:
            parent.insert(_index(parent, token, for_insert=True), value)
    else:
        raise _unprocessable(f"path not found: {path}")
    return doc


def json_patch(target: Mapping[str, Any], operations: Any) -> dict[str, Any]:
    """Apply RFC 6902 operations to a copy of `target`; a failed `test` refuses the whole patch."""
    if not isinstance(operations, list):
        raise bad_request("a JSON patch must be a list of operations")
    doc: Any = copy.deepcopy(dict(target))
    for operation in operations:
        if not isinstance(operation, Mapping) or "op" not in operation or "path" not in operation:
            raise bad_request(f"invalid JSON patch operation: {operation!r}")
        op, path = operation["op"], operation["path"]
        if op in ("add", "replace", "test") and "value" not in operation:
            raise bad_request(f"JSON patch operation {op!r} needs a value")
        if op == "add":
            doc = _add(doc, path, copy.deepcopy(operation["value"]), replace=False)
        elif op == "replace":
            doc = _add(doc, path, copy.deepcopy(operation["value"]), replace=True)
        elif op == "remove":
            _remove(doc, path)
        elif op == "test":
            if _get(doc, path) != operation["value"]:
                raise _unprocessable(f"testing value {path} failed")
        elif op in ("move", "copy"):
            value = _get(doc, operation["from"])
            if op == "move":
                _remove(doc, operation["from"])
            doc = _add(doc, path, copy.deepcopy(value), replace=False)
        else:
            raise bad_request(f"unknown JSON patch operation {op!r}")
    if not isinstance(doc, dict):
        raise _unprocessable("the patched document is not an object")
    return doc
