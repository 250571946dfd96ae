"""The credentials of incident.io calls: an account (base URL and API key) and an alert source (ID and token).

Neither secret ever prints: not in repr or str, not in a pickle, and so not in a log line or exception.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import ClassVar


class _Secret:
    """A secret string; repr and str never show it, equality and hash are by value and kind."""

    __slots__ = ("_value",)
    _what: ClassVar[str] = "secret"

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError(f"the {self._what} is empty")
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the Authorization header and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return f"{type(self).__name__}(<redacted>)"

    def __str__(self) -> str:
        return "<redacted>"

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Secret)
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((type(self), self._value))

    def __copy__(self) -> _Secret:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> _Secret:
        return self

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickling would write the secret into wherever the pickle ends up; copies share the immutable value.
        raise TypeError(f"{type(self).__name__} cannot be pickled")


class ApiKey(_Secret):
    """An incident.io API key."""

    __slots__ = ()
    _what = "API key"


class AlertSourceToken(_Secret):
    """An alert source's token: what POST /v2/alert_events/http/{id} and the heartbeat ping authenticate with."""

    __slots__ = ()
    _what = "alert source token"


@dataclass(frozen=True)
class Account:
    """Where to send requests and with which key; each destination may point at a different base URL."""

    base_url: str
    api_key: ApiKey


@dataclass(frozen=True)
class AlertSourceAccount:
    """One alert source (an HTTP source for alert events, or a heartbeat source): where, which, and its token.

    ``config_id`` is the alert source config ID in the paths of the spec's alert events and heartbeat
    operations. The client paces requests per (base_url, config_id).
    """

    base_url: str
    config_id: str
    token: AlertSourceToken
