"""The API key of each destination: read from its Secret when first needed, and again on every connection test."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from incidentio_operator.api import Destination, ObjectRef
from incidentio_operator.api.secrets import describe_unsendable
from incidentio_operator.incidentio import Account, ApiKey
from incidentio_operator.kube import KubeClient, KubeError


@dataclass(frozen=True)
class KeyRead:
    """What a destination's Secret holds: the key (None without a usable one), its resourceVersion, and why a
    value that is there cannot be used ('' when it can); never the value itself."""

    api_key: ApiKey | None
    secret_version: str
    problem: str = ""


class Credentials:
    """Keys are held in memory only, never written anywhere; a Secret's resourceVersion tells a rotation.

    The last usable key of each destination is kept after its Secret goes: a namespace being deleted
    loses its Secret first (it has no finalizer), and the incidents opened with that key must still be
    closed with it.
    """

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube
        self._current: dict[ObjectRef, KeyRead] = {}
        self._last_usable: dict[ObjectRef, ApiKey] = {}

    async def read(self, destination: Destination) -> KeyRead:
        """Read the destination's Secret now (a GET by name)."""
        assert destination.spec is not None
        secret = await self._kube.get("v1", "secrets", destination.ref.namespace, destination.spec.secret_name)
        read = key_from_secret(secret, destination.spec.secret_key, destination.spec.secret_name)
        self._current[destination.ref] = read
        if read.api_key is not None:
            self._last_usable[destination.ref] = read.api_key
        return read

    async def usable(self, destination: Destination, *, closing: bool = False) -> bool:
        """A call can be made now: a key is read (the Secret is read first if it never was), or for a close
        the last usable key is held."""
        current = self._current.get(destination.ref)
        if current is None:
            current = await self.read(destination)
        return current.api_key is not None or (closing and destination.ref in self._last_usable)

    def held(self, destination: ObjectRef) -> bool:
        """A key of this destination is in memory, usable to close what it opened even if its Secret is gone."""
        return destination in self._last_usable

    async def account(self, destination: Destination, *, closing: bool = False) -> Account:
        """The account to call incident.io with; a close may use the last usable key when the Secret has none.

        Raises KubeError (404, NoAPIKey) when there is no key to use.
        """
        assert destination.spec is not None
        current = self._current.get(destination.ref)
        api_key = current.api_key if current is not None else None
        if api_key is None:
            api_key = (await self.read(destination)).api_key
        if api_key is None and closing:
            api_key = self._last_usable.get(destination.ref)
        if api_key is None:
            raise KubeError(404, "NoAPIKey", f"no API key in the Secret of {destination.ref}")
        return Account(destination.spec.base_url, api_key)

    def forget(self, destination: ObjectRef) -> None:
        self._current.pop(destination, None)
        self._last_usable.pop(destination, None)


def key_from_secret(
    secret: Mapping[str, Any] | None, key: str, secret_name: str = "", what: str = "an API key"
) -> KeyRead:
    """The API key from a Secret's ``data`` (base64; surrounding whitespace forgiven), or why there is none usable.

    A value that cannot be sent in an Authorization header (a byte-order mark, an invisible or non-ASCII
    character, a line break inside it: api.secrets) is refused with a problem naming the kind of character
    and its position, never the value.
    """
    if secret is None:
        return KeyRead(None, "")
    version = str((secret.get("metadata") or {}).get("resourceVersion") or "")
    encoded = (secret.get("data") or {}).get(key)
    if not encoded:
        return KeyRead(None, version)
    where = f"the value of {key!r} in Secret {secret_name!r}" if secret_name else f"the value of {key!r}"
    try:
        value = base64.b64decode(encoded).decode()
    except (ValueError, UnicodeDecodeError):
        return KeyRead(None, version, f"{where} is not UTF-8 text")
    problem = describe_unsendable(value)
    if problem is not None:
        return KeyRead(None, version, f"{where} contains {problem}; {what} can hold only visible ASCII characters")
    value = value.strip()
    return KeyRead(ApiKey(value) if value else None, version)
