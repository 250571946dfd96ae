"""The API key of each destination: read from its Secret when first needed, and again on every connection test."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from incidentio_operator.api import Destination, ObjectRef
from incidentio_operator.incidentio import Account, ApiKey
from incidentio_operator.kube import KubeClient, KubeError


@dataclass
class _Cached:
    api_key: ApiKey | None = None
    secret_version: str = ""


class Credentials:
    """Keys are held in memory only, never written anywhere; a Secret's resourceVersion tells a rotation."""

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube
        self._cache: dict[ObjectRef, _Cached] = {}

    async def read(self, destination: Destination) -> tuple[ApiKey | None, str]:
        """Read the destination's Secret now: (the API key or None, the Secret's resourceVersion or '')."""
        assert destination.spec is not None
        secret = await self._kube.get("v1", "secrets", destination.ref.namespace, destination.spec.secret_name)
        api_key, version = api_key_from_secret(secret, destination.spec.secret_key)
        self._cache[destination.ref] = _Cached(api_key, version)
        return api_key, version

    async def account(self, destination: Destination) -> Account:
        """The account to call incident.io with; raises KubeError (404, NoAPIKey) when the Secret has no key."""
        assert destination.spec is not None
        cached = self._cache.get(destination.ref)
        api_key = cached.api_key if cached is not None else None
        if api_key is None:
            api_key = (await self.read(destination))[0]
        if api_key is None:
            raise KubeError(404, "NoAPIKey", f"no API key in the Secret of {destination.ref}")
        return Account(destination.spec.base_url, api_key)

    def forget(self, destination: ObjectRef) -> None:
        self._cache.pop(destination, None)


def api_key_from_secret(secret: Mapping[str, Any] | None, key: str) -> tuple[ApiKey | None, str]:
    """The API key from a Secret's ``data`` (base64, surrounding whitespace stripped) and its resourceVersion."""
    if secret is None:
        return None, ""
    version = str((secret.get("metadata") or {}).get("resourceVersion") or "")
    encoded = (secret.get("data") or {}).get(key)
    if not encoded:
        return None, version
    try:
        value = base64.b64decode(encoded).decode().strip()
    except (ValueError, UnicodeDecodeError):
        return None, version
    return (ApiKey(value) if value else None), version
