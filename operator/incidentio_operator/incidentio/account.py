"""The credentials of one incident.io account: its base URL and its API key, which never prints."""

from __future__ import annotations

import hmac
from dataclasses import dataclass


class ApiKey:
    """An incident.io API key; repr and str never show it, equality and hash are by value."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        if not value:
            raise ValueError("the API key is empty")
        self._value = value

    def reveal(self) -> str:
        """The secret itself, for the Authorization header and nothing else."""
        return self._value

    def __repr__(self) -> str:
        return "ApiKey(<redacted>)"

    def __str__(self) -> str:
        return "<redacted>"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ApiKey):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash((ApiKey, self._value))

    def __copy__(self) -> ApiKey:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> ApiKey:
        return self

    def __reduce__(self) -> str | tuple[object, ...]:
        # Pickling would write the secret into wherever the pickle ends up; copies share the immutable key.
        raise TypeError("an ApiKey cannot be pickled")


@dataclass(frozen=True)
class Account:
    """Where to send requests and with which key; each destination may point at a different base URL."""

    base_url: str
    api_key: ApiKey
