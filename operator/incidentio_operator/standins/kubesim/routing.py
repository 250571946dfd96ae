"""Which resource, object and verb a request addresses, the discovery documents, and JSON in and out.

Paths and verbs as https://kubernetes.io/docs/reference/using-api/api-concepts/#resource-uris lays them out.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from . import errors, resources
from .resources import ResourceType


@dataclass(frozen=True)
class Target:
    """What one API request addresses."""

    rt: ResourceType
    version: str
    namespace: str | None
    name: str | None
    subresource: str | None
    verb: str

    @functools.cached_property
    def api_version(self) -> str:
        return self.rt.api_version(self.version)

    def present(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The stored object in the apiVersion the request used."""
        return obj if obj.get("apiVersion") == self.api_version else {**obj, "apiVersion": self.api_version}


def discovery(request: web.Request, types: Sequence[ResourceType]) -> dict[str, Any] | None:
    """The discovery document the path asks for, or None when the path is not a discovery path."""
    parts = [p for p in request.path.split("/") if p]
    doc: dict[str, Any] | None
    if parts == ["version"]:
        doc = {"major": "1", "minor": "31", "gitVersion": "v1.31.0-kubesim", "platform": "linux/amd64"}
    elif parts == ["api"]:
        doc = resources.api_versions_doc()
    elif parts == ["apis"]:
        doc = resources.group_list_doc(types)
    elif len(parts) == 2 and parts[0] == "apis":
        doc = resources.group_doc(parts[1], types)
    elif len(parts) == 2 and parts[0] == "api":
        doc = resources.resource_list_doc("", parts[1], types)
    elif len(parts) == 3 and parts[0] == "apis":
        doc = resources.resource_list_doc(parts[1], parts[2], types)
    else:
        return None
    if doc is None:
        raise errors.no_such_path()
    if request.method != "GET":
        raise errors.method_not_allowed(request.method)
    return doc


def route(request: web.Request, find_type: Callable[[str, str, str], ResourceType | None]) -> Target:
    """The target of a resource path; 404 for paths nothing is served at, 405 for verbs a resource lacks.

    `find_type(group, version, plural)` is the store's lookup of served resources.
    """
    parts = [p for p in request.path.split("/") if p]
    if len(parts) >= 3 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 4 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        raise errors.no_such_path()
    namespace: str | None = None
    if rest[0] == "namespaces" and len(rest) >= 3 and not (len(rest) == 3 and rest[2] == "status"):
        namespace, rest = rest[1], rest[2:]
    rt = find_type(group, version, rest[0])
    if rt is None or len(rest) > 3 or (namespace is not None and not rt.namespaced):
        raise errors.no_such_path()
    name = rest[1] if len(rest) > 1 else None
    subresource = rest[2] if len(rest) > 2 else None
    if subresource is not None and (subresource != "status" or not rt.has_status):
        raise errors.no_such_path()
    if name is not None and rt.namespaced and namespace is None:
        raise errors.no_such_path()
    verb = _verb(request, name)
    if verb not in rt.verbs or (subresource is not None and verb not in resources.SUBRESOURCE_VERBS):
        raise errors.method_not_allowed(request.method)
    if verb == "create" and rt.namespaced and namespace is None:
        raise errors.method_not_allowed(request.method)
    return Target(rt, version, namespace, name, subresource, verb)


def _verb(request: web.Request, name: str | None) -> str:
    method = request.method
    if method == "GET":
        if name is not None:
            return "get"
        return "watch" if request.query.get("watch") in ("true", "1") else "list"
    if method == "POST" and name is None:
        return "create"
    if method == "PUT" and name is not None:
        return "update"
    if method == "PATCH" and name is not None:
        return "patch"
    if method == "DELETE":
        return "delete" if name is not None else "deletecollection"
    raise errors.method_not_allowed(method)


async def read_body(request: web.Request, *, optional: bool = False) -> Any:
    """The request's JSON body; 400 BadRequest when it is missing (unless optional) or not JSON."""
    raw = await request.read()
    if not raw.strip():
        if optional:
            return None
        raise errors.bad_request("the request body is empty")
    try:
        return json.loads(raw)
    except ValueError as exc:
        raise errors.bad_request(f"the request body is not valid JSON: {exc}") from exc


# One encoder for every body: json.dumps with non-default separators builds a new encoder on each call.
_ENCODER = json.JSONEncoder(separators=(",", ":"))


def encode(body: Any) -> bytes:
    return _ENCODER.encode(body).encode()


def json_response(body: bytes, status: int = 200) -> web.Response:
    return web.Response(body=body, status=status, content_type="application/json")
