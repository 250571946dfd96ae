"""The alert source tokens of each destination (its alert events' source, its heartbeat): read, held, refused.

A token lives only in memory, like an API key (controller.credentials): never in the spec, the status, an
Event, a log line or an exception message. The Secret's resourceVersion tells a rotation.
"""

from __future__ import annotations

from dataclasses import dataclass

from incidentio_operator.api import Destination, ObjectRef
from incidentio_operator.api.alertsource import SecretKeyRef
from incidentio_operator.controller.credentials import key_from_secret
from incidentio_operator.incidentio import AlertSourceAccount
from incidentio_operator.incidentio.account import AlertSourceToken
from incidentio_operator.kube import KubeClient, KubeError

# What a token is for: the destination's alert events (spec.alertSource) or its heartbeat (spec.heartbeat).
ALERT_SOURCE = "alertSource"
HEARTBEAT = "heartbeat"


@dataclass(frozen=True)
class TokenRead:
    """What the Secret holds: the token (None without a usable one), the Secret's resourceVersion, and why a
    value that is there cannot be used ('' when it can); never the value itself."""

    token: AlertSourceToken | None
    secret_version: str
    problem: str = ""


def token_ref(destination: Destination, purpose: str) -> tuple[str, SecretKeyRef] | None:
    """(config ID, token Secret) of the destination's alert source or heartbeat; None when it has none."""
    spec = destination.spec
    if spec is None:
        return None
    if purpose == HEARTBEAT:
        return (spec.heartbeat.alert_source_config_id, spec.heartbeat.token) if spec.heartbeat else None
    return (spec.alert_source.config_id, spec.alert_source.token) if spec.alert_source else None


class AlertSourceTokens:
    """Per (destination, purpose): the token last read, the last usable one, and the Secret version refused.

    A 401 or 403 on an alert event or a ping marks the token's current Secret version refused: incident.io
    has no call that checks a token without sending something, so the refusal is what the destination's
    connection test reports until the Secret changes. The last usable token is kept after its Secret goes,
    so alerts fired with it still resolve with it (as API keys: controller.credentials).
    """

    def __init__(self, kube: KubeClient) -> None:
        self._kube = kube
        self._current: dict[tuple[ObjectRef, str], TokenRead] = {}
        self._last_usable: dict[tuple[ObjectRef, str], AlertSourceToken] = {}
        self._refused: dict[tuple[ObjectRef, str], str] = {}

    async def read(self, destination: Destination, purpose: str = ALERT_SOURCE) -> TokenRead:
        """Read the token's Secret now (a GET by name); an empty read when the destination names none."""
        found = token_ref(destination, purpose)
        if found is None:
            return TokenRead(None, "")
        ref = found[1]
        secret = await self._kube.get("v1", "secrets", destination.ref.namespace, ref.name)
        read = key_from_secret(secret, ref.key, ref.name, "an alert source token")
        token = AlertSourceToken(read.api_key.reveal()) if read.api_key is not None else None
        result = TokenRead(token, read.secret_version, read.problem)
        key = (destination.ref, purpose)
        self._current[key] = result
        if token is not None:
            self._last_usable[key] = token
        return result

    async def usable(self, destination: Destination, *, closing: bool = False, purpose: str = ALERT_SOURCE) -> bool:
        """A call can go now: a token is read (the Secret is read first if it never was), or for a resolve
        the last usable token is held."""
        key = (destination.ref, purpose)
        current = self._current.get(key)
        if current is None:
            current = await self.read(destination, purpose)
        return current.token is not None or (closing and key in self._last_usable)

    def held(self, destination: ObjectRef, purpose: str = ALERT_SOURCE) -> bool:
        """A token of this destination is in memory, usable to resolve what it fired even if its Secret is gone."""
        return (destination, purpose) in self._last_usable

    async def source(
        self, destination: Destination, *, closing: bool = False, purpose: str = ALERT_SOURCE
    ) -> AlertSourceAccount:
        """The alert source to send to; a resolve may use the last usable token when the Secret has none.

        Raises KubeError (404, NoAlertSourceToken) when there is no token to use.
        """
        found = token_ref(destination, purpose)
        assert destination.spec is not None and found is not None
        key = (destination.ref, purpose)
        current = self._current.get(key)
        token = current.token if current is not None else None
        if token is None:
            token = (await self.read(destination, purpose)).token
        if token is None and closing:
            token = self._last_usable.get(key)
        if token is None:
            raise KubeError(404, "NoAlertSourceToken", f"no alert source token in {found[1]} of {destination.ref}")
        return AlertSourceAccount(destination.spec.base_url, found[0], token)

    def refuse(self, destination: ObjectRef, purpose: str = ALERT_SOURCE) -> None:
        """incident.io refused the token (401/403): remember which Secret version it was."""
        current = self._current.get((destination, purpose))
        if current is not None:
            self._refused[(destination, purpose)] = current.secret_version

    def refused(self, destination: ObjectRef, read: TokenRead, purpose: str = ALERT_SOURCE) -> bool:
        """The token just read is the one incident.io refused (its Secret has not changed since)."""
        return self._refused.get((destination, purpose)) == read.secret_version and read.token is not None

    def forget(self, destination: ObjectRef) -> None:
        for purpose in (ALERT_SOURCE, HEARTBEAT):
            key = (destination, purpose)
            self._current.pop(key, None)
            self._last_usable.pop(key, None)
            self._refused.pop(key, None)
