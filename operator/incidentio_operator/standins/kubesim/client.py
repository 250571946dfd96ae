"""A small synchronous HTTP client for tests that talks to the stand-in (or any API server) like kubectl."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import yaml

from .errors import ApiError

_MERGE_PATCH = {"Content-Type": "application/merge-patch+json"}

Objects = list[dict[str, Any]]


class StandInClient:
    """Create, read, patch, delete and watch objects over HTTP; kinds are mapped to plurals via discovery."""

    def __init__(self, base_url: str, *, namespace: str = "default", timeout: float = 10.0) -> None:
        self._http = httpx.Client(base_url=base_url, timeout=timeout, headers={"Authorization": "Bearer kubesim"})
        self._namespace = namespace
        self._discovered: dict[str, Objects] = {}

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> StandInClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # Plumbing ------------------------------------------------------------------------------------

    def _request(self, method: str, url: str, *, body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
        content = None if body is None else json.dumps(body).encode()
        merged = {"Content-Type": "application/json", **(headers or {})}
        response = self._http.request(method, url, content=content, headers=merged)
        try:
            payload = response.json()
        except ValueError:
            payload = response.text
        if response.status_code >= 400:
            raise ApiError.from_status(response.status_code, payload)
        return payload

    def _resources(self, api_version: str, *, refresh: bool = False) -> Objects:
        if refresh or api_version not in self._discovered:
            prefix = "/api/" if "/" not in api_version else "/apis/"
            try:
                doc = self._request("GET", prefix + api_version)
            except ApiError as exc:
                if exc.status != 404:
                    raise
                doc = {"resources": []}
            self._discovered[api_version] = [r for r in doc["resources"] if "/" not in r["name"]]
        return self._discovered[api_version]

    def resource(self, api_version: str, kind_or_plural: str) -> dict[str, Any]:
        """The discovery entry for a kind, plural, singular or short name (CRDs added later are found too)."""
        wanted = kind_or_plural.lower()
        for refresh in (False, True):
            for entry in self._resources(api_version, refresh=refresh):
                names = (entry["kind"].lower(), entry["name"], entry.get("singularName"), *entry.get("shortNames", ()))
                if wanted in names:
                    return entry
        raise ApiError(404, "NotFound", f'no matches for kind "{kind_or_plural}" in version "{api_version}"')

    def url(
        self,
        api_version: str,
        kind_or_plural: str,
        namespace: str | None = None,
        name: str | None = None,
        subresource: str | None = None,
    ) -> str:
        entry = self.resource(api_version, kind_or_plural)
        parts = ["api" if "/" not in api_version else "apis", api_version]
        if entry["namespaced"] and namespace is not None:
            parts += ["namespaces", namespace]
        parts.append(entry["name"])
        if name is not None:
            parts.append(name)
        if subresource is not None:
            parts.append(subresource)
        return "/" + "/".join(parts)

    def _coordinates(self, obj: Mapping[str, Any]) -> tuple[str, str, str | None, str]:
        api_version, kind = obj["apiVersion"], obj["kind"]
        meta = obj.get("metadata") or {}
        namespaced = self.resource(api_version, kind)["namespaced"]
        namespace = (meta.get("namespace") or self._namespace) if namespaced else None
        return api_version, kind, namespace, meta.get("name", "")

    # Verbs ---------------------------------------------------------------------------------------

    def create(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        api_version, kind, namespace, _ = self._coordinates(obj)
        created: dict[str, Any] = self._request("POST", self.url(api_version, kind, namespace), body=obj)
        return created

    def apply(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        """Create the object, or merge-patch the main resource when it exists (no three-way diff)."""
        api_version, kind, namespace, name = self._coordinates(obj)
        if name and self.get(api_version, kind, namespace, name) is not None:
            meta = {k: v for k, v in (obj.get("metadata") or {}).items() if k != "resourceVersion"}
            return self.patch(api_version, kind, namespace, name, {**obj, "metadata": meta})
        return self.create(obj)

    def update(self, obj: Mapping[str, Any], *, subresource: str | None = None) -> dict[str, Any]:
        """PUT the whole object; its metadata.resourceVersion is the optimistic-concurrency precondition."""
        api_version, kind, namespace, name = self._coordinates(obj)
        updated: dict[str, Any] = self._request(
            "PUT", self.url(api_version, kind, namespace, name, subresource), body=obj
        )
        return updated

    def get(self, api_version: str, kind_or_plural: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            found: dict[str, Any] = self._request("GET", self.url(api_version, kind_or_plural, namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise
        return found

    def list(
        self,
        api_version: str,
        plural: str,
        namespace: str | None = None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
        limit: int | None = None,
    ) -> Objects:
        """Every matching object, following `continue` tokens when `limit` pages the list."""
        params = _selectors(label_selector, field_selector)
        if limit:
            params["limit"] = str(limit)
        url = self.url(api_version, plural, namespace)
        items: Objects = []
        while True:
            page = self._request("GET", str(httpx.URL(url, params=params)))
            items.extend(page["items"])
            token = page["metadata"].get("continue")
            if not token:
                return items
            params["continue"] = token

    def patch(
        self, api_version: str, plural: str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        patched: dict[str, Any] = self._request(
            "PATCH", self.url(api_version, plural, namespace, name), body=patch, headers=_MERGE_PATCH
        )
        return patched

    def patch_status(
        self, api_version: str, plural: str, namespace: str | None, name: str, patch: Mapping[str, Any]
    ) -> dict[str, Any]:
        patched: dict[str, Any] = self._request(
            "PATCH", self.url(api_version, plural, namespace, name, "status"), body=patch, headers=_MERGE_PATCH
        )
        return patched

    def delete(self, api_version: str, plural: str, namespace: str | None, name: str) -> dict[str, Any]:
        deleted: dict[str, Any] = self._request("DELETE", self.url(api_version, plural, namespace, name))
        return deleted

    def events(self, namespace: str | None = None) -> Objects:
        return self.list("v1", "events", namespace)

    def watch(
        self,
        api_version: str,
        plural: str,
        namespace: str | None = None,
        *,
        resource_version: str | None = None,
        timeout_seconds: int | None = None,
        bookmarks: bool = False,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Stream watch events until the server ends the stream (use `timeout_seconds` to bound it)."""
        params = {"watch": "true", **_selectors(label_selector, field_selector)}
        if resource_version is not None:
            params["resourceVersion"] = resource_version
        if timeout_seconds is not None:
            params["timeoutSeconds"] = str(timeout_seconds)
        if bookmarks:
            params["allowWatchBookmarks"] = "true"
        url = self.url(api_version, plural, namespace)
        with self._http.stream("GET", url, params=params, timeout=None) as response:
            if response.status_code >= 400:
                response.read()
                raise ApiError.from_status(response.status_code, response.json())
            for line in response.iter_lines():
                if line.strip():
                    yield json.loads(line)

    # Manifests -----------------------------------------------------------------------------------

    def apply_yaml(self, text: str) -> Objects:
        """Apply every document of a multi-document YAML stream, in order."""
        return [self.apply(doc) for doc in yaml.safe_load_all(text) if doc]

    def apply_file(self, path: Path | str) -> Objects:
        return self.apply_yaml(Path(path).read_text())


def _selectors(label_selector: str | None, field_selector: str | None) -> dict[str, str]:
    """The query parameters of a list's or watch's label and field selectors."""
    params: dict[str, str] = {}
    if label_selector:
        params["labelSelector"] = label_selector
    if field_selector:
        params["fieldSelector"] = field_selector
    return params
