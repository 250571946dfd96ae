"""A reason the API server would refuse an object, and the value rendering its messages share."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class SchemaProblem:
    """One reason the API server would refuse an object, in its words."""

    field: str
    message: str

    def __str__(self) -> str:
        return f"{self.field}: {self.message}" if self.field else self.message


def render_json(value: Any) -> str:
    """`value` as the API server quotes it in a message: compact JSON."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True)


def join(path: str, name: str) -> str:
    """The field path of property `name` below `path` (`spec` + `x` is `spec.x`)."""
    return f"{path}.{name}" if path else name
