"""A destination's custom fields: the incident.io field each entry fills, and the alert value it takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from incidentio_operator.api.alert import DataAlertSpec
from incidentio_operator.api.common import SpecError, mapping, string

CUSTOM_FIELDS = "spec.incident.customFields"

# How each alert attribute a custom field can be filled from is read; with "label", the closed set of them.
_READERS: Mapping[str, Callable[[DataAlertSpec], str]] = {
    "assetQualifiedName": lambda alert: alert.asset.qualified_name,
    "assetDatabase": lambda alert: alert.asset.database,
    "assetSchema": lambda alert: alert.asset.schema,
    "assetTable": lambda alert: alert.asset.table,
    "assetEnvironment": lambda alert: alert.asset.environment,
    "eventType": lambda alert: alert.event_type,
    "severity": lambda alert: alert.severity,
    "source": lambda alert: alert.source,
    "externalId": lambda alert: alert.external_id,
}
ATTRIBUTES = (*_READERS, "label")


@dataclass(frozen=True)
class CustomFieldSource:
    """One entry of ``spec.incident.customFields``: a field (name or ID) and a fixed ``value`` or an attribute.

    ``source`` is the entry's ``from`` (one of ATTRIBUTES); ``label`` is the label key when it is ``label``.
    """

    field: str
    value: str = ""
    source: str = ""
    label: str = ""

    @property
    def fixed(self) -> bool:
        return not self.source

    def describe(self) -> str:
        """Where the value comes from, as a message names it: ``value 'x'``, ``from severity``, ``from label team``."""
        if self.fixed:
            return f"value {self.value!r}"
        return f"from label {self.label}" if self.source == "label" else f"from {self.source}"

    def value_for(self, alert: DataAlertSpec, labels: Mapping[str, str]) -> str:
        """The value this entry gives for the alert ('' when the attribute or label is not set)."""
        if self.fixed:
            return self.value
        if self.source == "label":
            return str(labels.get(self.label) or "")
        return _READERS[self.source](alert)


def parse_custom_fields(raw: Any) -> tuple[CustomFieldSource, ...]:
    """``spec.incident.customFields`` parsed; SpecError naming ``spec.incident.customFields[i]`` otherwise."""
    if raw is None:
        return ()
    if not isinstance(raw, list):
        raise SpecError(CUSTOM_FIELDS, "must be a list of {field, value | from}")
    parsed: list[CustomFieldSource] = []
    for index, item in enumerate(raw):
        where = f"{CUSTOM_FIELDS}[{index}]"
        entry = mapping(item, where)
        field = string(entry.get("field"), f"{where}.field").strip()
        if not field:
            raise SpecError(f"{where}.field", "name an incident.io custom field, by name or ID")
        if any(other.field == field for other in parsed):
            raise SpecError(f"{where}.field", f"{field!r} is named by an earlier entry; name each field once")
        parsed.append(_source(entry, field, where))
    return tuple(parsed)


def _source(entry: Mapping[str, Any], field: str, where: str) -> CustomFieldSource:
    value = string(entry.get("value"), f"{where}.value")
    source = string(entry.get("from"), f"{where}.from")
    label = string(entry.get("label"), f"{where}.label")
    if ("value" in entry and source) or not (value or source):
        raise SpecError(where, "set exactly one of value (a fixed, non-empty value) and from (an alert attribute)")
    if source and source not in ATTRIBUTES:
        raise SpecError(f"{where}.from", f"must be one of {', '.join(ATTRIBUTES)} (got {source!r})")
    if source == "label" and not label:
        raise SpecError(f"{where}.label", "name the DataAlert label the value comes from")
    if label and source != "label":
        raise SpecError(f"{where}.label", "is only used with from: label")
    return CustomFieldSource(field=field, value=value, source=source, label=label)
