"""Custom fields, pure: a destination's entries resolved against incident.io's fields, and the alert's values.

Field types are CustomFieldV2.field_type of the reference spec: text, link and numeric fields take a string
each (CustomFieldValuePayloadV2.value_text / value_link / value_numeric), select fields the ID of one of
their options (value_option_id), matched here by the option's name (CustomFieldOptionV1.value).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from incidentio_operator.api import DataAlertSpec
from incidentio_operator.api.customfields import CUSTOM_FIELDS, CustomFieldSource
from incidentio_operator.incidentio.customfields import (
    SELECT_TYPES,
    CustomField,
    CustomFieldEntryPayload,
    CustomFieldOption,
    CustomFieldValuePayload,
)

# A number as incident.io writes value_numeric (the spec's example is "123.456").
NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")
LINK_SCHEMES = ("http://", "https://")
FIELD_TYPES = ("text", "link", "numeric", *sorted(SELECT_TYPES))
# The attributes whose values can be a number or a link; the others (severity, event type, asset names) never are.
FITS = {"numeric": ("label", "externalId"), "link": ("externalId",)}
# How many option names a message lists before it says how many more there are.
NAMED_OPTIONS = 10


def match_field(wanted: str, fields: Sequence[CustomField]) -> CustomField | None:
    """The field with this ID, or else this name (case-insensitively), as severities are matched."""
    by_id = next((field for field in fields if field.id == wanted), None)
    return by_id or next((field for field in fields if field.name.casefold() == wanted.casefold()), None)


def match_option(value: str, options: Mapping[str, str]) -> str | None:
    """The ID of the option named ``value`` (exactly, else case-insensitively), from ``{name: id}``."""
    if value in options:
        return options[value]
    return next((option_id for name, option_id in options.items() if name.casefold() == value.casefold()), None)


def resolve_custom_fields(
    sources: Sequence[CustomFieldSource],
    fields: Sequence[CustomField],
    options: Mapping[str, Sequence[CustomFieldOption]],
) -> tuple[dict[str, Any], str, str]:
    """``status.customFieldIds`` for the destination's entries; or a reason and a message naming the entry.

    The reason is ``CustomFieldNotFound`` (no such field) or ``InvalidCustomField`` (its type does not fit).

    ``options`` holds the options of each select field the entries name, by field ID. The result maps each
    entry's ``field`` to ``{id, name, type}`` and, for select fields, ``options`` ``{name: id}``: every option
    for a value from the alert, the one chosen for a fixed value.
    """
    resolved: dict[str, Any] = {}
    known = "; custom fields: " + (", ".join(f"{f.name} ({f.field_type})" for f in fields) or "none")
    for index, source in enumerate(sources):
        where = f"{CUSTOM_FIELDS}[{index}]"
        field = match_field(source.field, fields)
        if field is None:
            message = f"custom field {source.field!r} ({where}) does not exist in incident.io{known}"
            return {}, "CustomFieldNotFound", message
        named = {option.value: option.id for option in options.get(field.id, ())}
        problem = _misfit(source, field, named)
        if problem:
            return {}, "InvalidCustomField", f"{where} ({field.name}, a {field.field_type} field): {problem}{known}"
        entry: dict[str, Any] = {"id": field.id, "name": field.name, "type": field.field_type}
        if field.takes_options:
            chosen = match_option(source.value, named) if source.fixed else None
            entry["options"] = {name: option_id for name, option_id in named.items() if chosen in (None, option_id)}
        resolved[source.field] = entry
    return resolved, "", ""


def _misfit(source: CustomFieldSource, field: CustomField, options: Mapping[str, str]) -> str:
    """Why the entry's value source cannot fill the field ('' when it can)."""
    if field.field_type not in FIELD_TYPES:
        return f"the operator fills {', '.join(FIELD_TYPES)} fields only"
    if source.fixed:
        problem = _refusal(field.field_type, source.value, options)
        return f"value {source.value!r}: {problem}" if problem else ""
    fitting = FITS.get(field.field_type)
    if fitting is not None and source.source not in fitting:
        return (
            f"{source.describe()} never gives a {field.field_type} value; "
            f"use a fixed value or from: {' or '.join(fitting)}"
        )
    return ""


def _refusal(field_type: str, value: str, options: Mapping[str, str]) -> str:
    """Why incident.io would refuse ``value`` for a field of this type ('' when it takes it)."""
    if field_type == "numeric" and not NUMERIC.match(value):
        return "is not a number (such as 42 or 0.5)"
    if field_type == "link" and not value.startswith(LINK_SCHEMES):
        return "is not an http(s) link"
    if field_type in SELECT_TYPES and match_option(value, options) is None:
        return f"is not one of its options ({_names(options)})"
    return ""


def _names(options: Mapping[str, str]) -> str:
    names = list(options)
    shown = ", ".join(names[:NAMED_OPTIONS]) or "it has none"
    return shown + (f" and {len(names) - NAMED_OPTIONS} more" if len(names) > NAMED_OPTIONS else "")


@dataclass(frozen=True)
class FieldValues:
    """The custom field values an alert gives: entries for the fields that get one, and why others are unset.

    ``managed`` lists every field ID the destination fills, with a value or not, so an update can unset a
    field whose value went away.
    """

    entries: tuple[CustomFieldEntryPayload, ...] = ()
    managed: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()


def field_values(
    sources: Sequence[CustomFieldSource],
    resolved: Mapping[str, Any],
    alert: DataAlertSpec,
    labels: Mapping[str, str],
) -> FieldValues:
    """The destination's custom field values for the alert, from ``status.customFieldIds`` (``resolved``).

    An empty attribute leaves its field unset; a value the field cannot take (no option of that name, not a
    number, not a link) leaves it unset too, with a note saying why. Entries not resolved yet are skipped.
    """
    entries: list[CustomFieldEntryPayload] = []
    managed: list[str] = []
    notes: list[str] = []
    for source in sources:
        info = resolved.get(source.field)
        if not isinstance(info, Mapping) or not info.get("id"):
            continue
        field_id, field_type = str(info["id"]), str(info.get("type") or "")
        managed.append(field_id)
        value = source.value_for(alert, labels).strip()
        if not value:
            continue
        listed = info.get("options")
        options = {str(k): str(v) for k, v in listed.items()} if isinstance(listed, Mapping) else {}
        payload = _payload(field_type, value, options)
        if payload is None:
            refusal = _refusal(field_type, value, options) or f"a {field_type} field cannot be set by the operator"
            name = str(info.get("name") or source.field)
            notes.append(f"custom field {name!r} left unset: {value!r} ({source.describe()}) {refusal}")
            continue
        entries.append(CustomFieldEntryPayload(field_id, (payload,)))
    return FieldValues(tuple(entries), tuple(managed), tuple(notes))


def _payload(field_type: str, value: str, options: Mapping[str, str]) -> CustomFieldValuePayload | None:
    if _refusal(field_type, value, options):
        return None
    if field_type == "text":
        return CustomFieldValuePayload.text(value)
    if field_type == "link":
        return CustomFieldValuePayload.link(value)
    if field_type == "numeric":
        return CustomFieldValuePayload.numeric(value)
    if field_type in SELECT_TYPES:
        option_id = match_option(value, options)
        return CustomFieldValuePayload.option(option_id) if option_id else None
    return None
