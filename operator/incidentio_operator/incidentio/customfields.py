"""incident.io custom fields: the fields and their options as listed, an incident's entries, and entries to send.

Field types are those of CustomFieldV2.field_type in the spec: single_select, multi_select, text, link and
numeric; kept as text, since incident.io adds types over time. Select fields take option IDs
(CustomFieldValuePayloadV2.value_option_id); text, link and numeric fields take a string each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from incidentio_operator.incidentio.parsing import (
    object_of,
    optional_int,
    optional_str,
    required_str,
)

SELECT_TYPES = frozenset({"single_select", "multi_select"})


@dataclass(frozen=True)
class CustomField:
    """One custom field (CustomFieldV2 from GET /v2/custom_fields, or CustomFieldTypeInfoV2 in an incident)."""

    id: str
    name: str
    field_type: str
    description: str

    @property
    def takes_options(self) -> bool:
        return self.field_type in SELECT_TYPES

    @classmethod
    def from_json(cls, data: object) -> CustomField:
        field = object_of(data, "custom_field")
        return cls(
            id=required_str(field, "id", "custom_field"),
            name=required_str(field, "name", "custom_field"),
            field_type=required_str(field, "field_type", "custom_field"),
            description=optional_str(field, "description") or "",
        )


@dataclass(frozen=True)
class CustomFieldOption:
    """One option of a select field (CustomFieldOptionV1 from GET /v1/custom_field_options, or V2)."""

    id: str
    custom_field_id: str
    value: str
    sort_key: int

    @classmethod
    def from_json(cls, data: object) -> CustomFieldOption:
        option = object_of(data, "custom_field_option")
        return cls(
            id=required_str(option, "id", "custom_field_option"),
            custom_field_id=optional_str(option, "custom_field_id") or "",
            value=required_str(option, "value", "custom_field_option"),
            sort_key=optional_int(option, "sort_key") or 0,
        )


@dataclass(frozen=True)
class CustomFieldValuePayload:
    """One value to set (CustomFieldValuePayloadV2): exactly the member the field's type takes is set."""

    value_text: str | None = None
    value_link: str | None = None
    value_numeric: str | None = None
    value_option_id: str | None = None

    @classmethod
    def text(cls, value: str) -> CustomFieldValuePayload:
        return cls(value_text=value)

    @classmethod
    def link(cls, value: str) -> CustomFieldValuePayload:
        return cls(value_link=value)

    @classmethod
    def numeric(cls, value: str) -> CustomFieldValuePayload:
        """A number as incident.io writes it in value_numeric: a decimal string such as "123.456"."""
        return cls(value_numeric=value)

    @classmethod
    def option(cls, option_id: str) -> CustomFieldValuePayload:
        return cls(value_option_id=option_id)

    def to_json(self) -> dict[str, str]:
        members = {
            "value_text": self.value_text,
            "value_link": self.value_link,
            "value_numeric": self.value_numeric,
            "value_option_id": self.value_option_id,
        }
        return {key: value for key, value in members.items() if value is not None}


@dataclass(frozen=True)
class CustomFieldEntryPayload:
    """A field's values to set (CustomFieldEntryPayloadV2); no values unsets the field, as the spec says."""

    custom_field_id: str
    values: tuple[CustomFieldValuePayload, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"custom_field_id": self.custom_field_id, "values": [value.to_json() for value in self.values]}


@dataclass(frozen=True)
class CustomFieldValue:
    """One value an incident holds (CustomFieldValueV2); for select fields, the option with its name."""

    value_text: str | None = None
    value_link: str | None = None
    value_numeric: str | None = None
    value_option: CustomFieldOption | None = None

    @classmethod
    def from_json(cls, data: object) -> CustomFieldValue:
        value = object_of(data, "custom_field_value")
        option = value.get("value_option")
        return cls(
            value_text=optional_str(value, "value_text"),
            value_link=optional_str(value, "value_link"),
            value_numeric=optional_str(value, "value_numeric"),
            value_option=CustomFieldOption.from_json(option) if option is not None else None,
        )

    def as_payload(self) -> CustomFieldValuePayload:
        """The value as it would be sent, to compare what an incident holds with what the product would set."""
        return CustomFieldValuePayload(
            value_text=self.value_text,
            value_link=self.value_link,
            value_numeric=self.value_numeric,
            value_option_id=self.value_option.id if self.value_option is not None else None,
        )


@dataclass(frozen=True)
class CustomFieldEntry:
    """One field's values on an incident (CustomFieldEntryV2)."""

    custom_field: CustomField
    values: tuple[CustomFieldValue, ...]

    @classmethod
    def from_json(cls, data: object) -> CustomFieldEntry:
        entry = object_of(data, "custom_field_entry")
        values = entry.get("values")
        return cls(
            custom_field=CustomField.from_json(entry.get("custom_field")),
            values=tuple(CustomFieldValue.from_json(value) for value in values) if isinstance(values, list) else (),
        )

    def as_payload(self) -> CustomFieldEntryPayload:
        return CustomFieldEntryPayload(self.custom_field.id, tuple(value.as_payload() for value in self.values))
