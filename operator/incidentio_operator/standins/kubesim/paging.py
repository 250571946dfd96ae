"""Paged lists: one page of a list, and the continue tokens that carry a list's resourceVersion across pages."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from . import errors

# A continue token whose list resourceVersion is this continues at the latest revision, as the real
# server's replacement for an expired token does (apiserver/pkg/storage/etcd3 `handleCompactedErrorForPaging`).
LATEST = -1

# The real server's message for an expired continue token it offers a replacement for.
INCONSISTENT_CONTINUE = (
    "The provided continue parameter is too old to display a consistent list result. You can start a new "
    "list without the continue parameter, or use the continue token in this response to retrieve the "
    "remainder of the results. Continuing with the provided token results in an inconsistent list - objects "
    "that were created, modified, or deleted between the time the first chunk was returned and now may show "
    "up in the list."
)


@dataclass
class ListPage:
    """Items in etcd key order; `continue_token` is empty on the last page."""

    items: list[dict[str, Any]]
    resource_version: str
    continue_token: str
    remaining: int | None


def encode_continue(rv: int, key: tuple[str, str]) -> str:
    """A token for the page after `key` (namespace, name) of a list made at `rv`."""
    return base64.urlsafe_b64encode(json.dumps({"rv": rv, "start": list(key)}).encode()).decode()


def decode_continue(token: str) -> tuple[int, tuple[str, str]]:
    """The list resourceVersion and the last key of the previous page; 400 BadRequest for a malformed token."""
    try:
        data = json.loads(base64.urlsafe_b64decode(token.encode()))
        return int(data["rv"]), (str(data["start"][0]), str(data["start"][1]))
    except (ValueError, KeyError, IndexError, TypeError, binascii.Error) as exc:
        raise errors.bad_request(f"continue key is not valid: {exc}") from exc
