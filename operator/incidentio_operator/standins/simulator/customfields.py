"""The simulated custom fields: their listings, and the checking of an incident's custom field entries."""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

from incidentio_operator.standins.simulator.config import SEEDED_AT, CustomFieldOptionSeed, CustomFieldSeed
from incidentio_operator.standins.simulator.envelope import ApiError, error, invalid, not_found

# Which value each field type takes (CustomFieldValuePayloadV2); the select types take option IDs.
VALUE_KEYS = {
    "text": "value_text",
    "link": "value_link",
    "numeric": "value_numeric",
    "single_select": "value_option_id",
    "multi_select": "value_option_id",
}
PAYLOAD_VALUE_KEYS = (
    "value_text",
    "value_link",
    "value_numeric",
    "value_option_id",
    "value_catalog_entry_id",
    "value_timestamp",
)
# A decimal number as the spec's examples write value_numeric ("123.456").
NUMERIC = re.compile(r"^-?\d+(\.\d+)?$")
OPTIONS_PAGE_SIZE_DEFAULT = 25
OPTIONS_PAGE_SIZE_MAX = 250


def option_body(field_id: str, option: CustomFieldOptionSeed) -> dict[str, Any]:
    """CustomFieldOptionV1 and CustomFieldOptionV2 (the same shape)."""
    return {"id": option.id, "custom_field_id": field_id, "value": option.value, "sort_key": option.sort_key}


def field_body(seed: CustomFieldSeed) -> dict[str, Any]:
    """CustomFieldV2, as GET /v2/custom_fields lists it."""
    return {
        "id": seed.id,
        "name": seed.name,
        "description": seed.description,
        "field_type": seed.field_type,
        "created_at": SEEDED_AT,
        "updated_at": SEEDED_AT,
    }


def type_info_body(seed: CustomFieldSeed) -> dict[str, Any]:
    """CustomFieldTypeInfoV2, the field as an incident's custom_field_entries name it: no times, its options."""
    body = {key: value for key, value in field_body(seed).items() if key not in ("created_at", "updated_at")}
    return {**body, "options": [option_body(seed.id, option) for option in sorted_options(seed)]}


def sorted_options(seed: CustomFieldSeed) -> list[CustomFieldOptionSeed]:
    return sorted(seed.options, key=lambda option: (option.sort_key, option.id))


def options_page(fields: Sequence[CustomFieldSeed], query: dict[str, str]) -> dict[str, Any]:
    """GET /v1/custom_field_options: one page of a field's options, in sort order, after ``after``.

    ``pagination_meta.after`` is given only while more options follow, as the spec describes it
    ("If provided, pass this as the 'after' param to load the next page").
    """
    field_id = query.get("custom_field_id", "")
    if not field_id:
        raise ApiError(422, [error("is_required", "custom_field_id is required", "custom_field_id")])
    page_size = _page_size(query.get("page_size"))
    seed = next((candidate for candidate in fields if candidate.id == field_id), None)
    if seed is None:
        raise not_found(f"No custom field with ID {field_id!r}")
    options = sorted_options(seed)
    start = 0
    if "after" in query:
        ids = [option.id for option in options]
        if query["after"] not in ids:
            raise invalid(f"No option with ID {query['after']!r} in this custom field", "after")
        start = ids.index(query["after"]) + 1
    page = options[start : start + page_size]
    meta: dict[str, Any] = {"page_size": page_size}
    if start + page_size < len(options):
        meta["after"] = page[-1].id
    return {"custom_field_options": [option_body(seed.id, option) for option in page], "pagination_meta": meta}


def _page_size(text: str | None) -> int:
    if text is None:
        return OPTIONS_PAGE_SIZE_DEFAULT
    if not text.isdigit() or not 1 <= int(text) <= OPTIONS_PAGE_SIZE_MAX:
        raise invalid(f"page_size must be a whole number from 1 to {OPTIONS_PAGE_SIZE_MAX}", "page_size")
    return int(text)


def checked_entries(
    fields: Sequence[CustomFieldSeed], entries: Sequence[dict[str, Any]], prefix: str
) -> dict[str, list[dict[str, Any]]]:
    """The entries of a create or edit payload as stored values by field ID; ApiError 422 naming each problem.

    ``entries`` already match CustomFieldEntryPayloadV2. Each value must be the kind its field's type
    takes, a select value must name one of the field's options, and a single select takes one value.
    An empty ``values`` list unsets the field, as the spec says.
    """
    by_id = {seed.id: seed for seed in fields}
    problems: list[dict[str, Any]] = []
    stored: dict[str, list[dict[str, Any]]] = {}
    for index, entry in enumerate(entries):
        where = f"{prefix}custom_field_entries.{index}"
        seed = by_id.get(entry["custom_field_id"])
        if seed is None:
            known = ", ".join(f"{s.name} ({s.id})" for s in fields) or "none"
            message = f"No custom field with ID {entry['custom_field_id']!r} exists; the custom fields are: {known}"
            problems.append(error("invalid_value", message, f"{where}.custom_field_id"))
            continue
        values, found = _checked_values(seed, entry["values"], f"{where}.values")
        problems += found
        stored[seed.id] = values
    if problems:
        raise ApiError(422, problems)
    return stored


def _checked_values(
    seed: CustomFieldSeed, values: Sequence[dict[str, Any]], where: str
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    wanted = VALUE_KEYS[seed.field_type]
    problems: list[dict[str, Any]] = []
    stored: list[dict[str, Any]] = []
    if seed.field_type != "multi_select" and len(values) > 1:
        message = f"Custom field {seed.name!r} is a {seed.field_type} field and takes one value, not {len(values)}"
        problems.append(error("invalid_value", message, where))
    for index, value in enumerate(values):
        given = [key for key in PAYLOAD_VALUE_KEYS if key in value]
        if given != [wanted]:
            message = (
                f"Custom field {seed.name!r} is a {seed.field_type} field: each value sets {wanted} only"
                f" (this one sets {', '.join(given) or 'nothing'})"
            )
            problems.append(error("invalid_value", message, f"{where}.{index}"))
            continue
        problem, body = _value_body(seed, value[wanted], f"{where}.{index}.{wanted}")
        if problem is not None:
            problems.append(problem)
        else:
            stored.append(body)
    return stored, problems


def _value_body(seed: CustomFieldSeed, value: str, where: str) -> tuple[dict[str, Any] | None, dict[str, Any]]:
    """A stored value (CustomFieldValueV2), or the problem with it."""
    if seed.field_type in ("single_select", "multi_select"):
        option = next((option for option in seed.options if option.id == value), None)
        if option is None:
            names = ", ".join(f"{o.value} ({o.id})" for o in sorted_options(seed))
            message = f"Custom field {seed.name!r} has no option with ID {value!r}; its options are: {names}"
            return error("invalid_value", message, where), {}
        return None, {"value_option": option_body(seed.id, option)}
    if seed.field_type == "numeric" and not NUMERIC.match(value):
        return error("invalid_value", f"Custom field {seed.name!r} is numeric: {value!r} is not a number", where), {}
    return None, {VALUE_KEYS[seed.field_type]: value}


def entries_body(fields: Sequence[CustomFieldSeed], values: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """An incident's custom_field_entries (CustomFieldEntryV2) for the fields it has values for."""
    return [{"custom_field": type_info_body(seed), "values": values[seed.id]} for seed in fields if values.get(seed.id)]
