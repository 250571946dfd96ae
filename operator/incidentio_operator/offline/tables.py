"""``kubectl get``-style tables of custom objects, built from the CRDs' printer columns."""

from __future__ import annotations

import datetime
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from incidentio_operator.api.common import parse_time

# The JSONPath forms printer columns use here: `.a.b`, `.a[*].b`, `.a[?(@.k=="v")].b`.
_STEP = re.compile(r'\.([A-Za-z0-9_]+)|\[\*\]|\[\?\(@\.([A-Za-z0-9_]+)=="([^"]*)"\)\]')


def jsonpath(obj: Any, path: str) -> list[Any]:
    """Evaluate the simple JSONPath subset kubectl's printer columns use; returns every match."""
    values = [obj]
    position = 0
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise ValueError(f"unsupported JSONPath {path!r} at {path[position:]!r}")
        position = match.end()
        field, filter_key, filter_value = match.groups()
        found: list[Any] = []
        for value in values:
            if field is not None:
                if isinstance(value, Mapping) and field in value:
                    found.append(value[field])
            elif filter_key is None:
                if isinstance(value, list):
                    found.extend(value)
            elif isinstance(value, list):
                found.extend(
                    item for item in value if isinstance(item, Mapping) and item.get(filter_key) == filter_value
                )
        values = found
    return values


def age(timestamp: str | None, now: datetime.datetime) -> str:
    moment = parse_time(timestamp)
    if moment is None:
        return "<unknown>"
    seconds = max(int((now - moment).total_seconds()), 0)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def columns_of(crd: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    versions = crd["spec"]["versions"]
    version = next((v for v in versions if v.get("storage")), versions[0])
    return list(version.get("additionalPrinterColumns") or ())


def render(
    crd: Mapping[str, Any], objects: Iterable[Mapping[str, Any]], now: datetime.datetime, *, namespaced: bool = False
) -> str:
    """The table ``kubectl get <kind>`` prints for these objects."""
    columns = columns_of(crd)
    header = (["NAMESPACE"] if namespaced else []) + ["NAME"] + [str(c["name"]).upper() for c in columns]
    rows: list[list[str]] = [header]
    for obj in objects:
        meta = obj.get("metadata") or {}
        row = ([str(meta.get("namespace", ""))] if namespaced else []) + [str(meta.get("name", ""))]
        for column in columns:
            values = jsonpath(obj, str(column["jsonPath"]))
            if column.get("type") == "date":
                row.append(age(values[0] if values else None, now))
            else:
                row.append(",".join(_text(v) for v in values))
        rows.append(row)
    return format_rows(rows)


def format_rows(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "" if value is None else str(value)
