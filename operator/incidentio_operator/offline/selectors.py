"""Label selectors in custom objects that name keys or values no label can have, so they can never match.

The API server accepts such a selector (the CRD schema only bounds its strings) but refuses every label that
would match it, by the rules of offline/names.py. Selectors are found by their shape in the CRD schema (an
object with `matchLabels` or `matchExpressions` of key/operator/values, as metav1.LabelSelector), so every
selector a CRD declares is covered, not only AlertRule's `spec.scope.assetSelector`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from incidentio_operator.offline.names import go_quote, is_label_key, is_label_value
from incidentio_operator.offline.schema import SchemaProblem

# What a requirement whose key no label can have does, by operator: In and Exists need the label.
_KEY_OUTCOME = {
    "In": "this requirement never holds",
    "Exists": "this requirement never holds",
    "NotIn": "this requirement always holds",
    "DoesNotExist": "this requirement always holds",
}
# What a value no label can have does in a requirement, by operator.
_VALUE_OUTCOME = {"In": "it never matches", "NotIn": "it excludes nothing"}


def _is_selector(schema: Mapping[str, Any]) -> bool:
    properties = schema.get("properties", {})
    expressions = properties.get("matchExpressions", {}).get("items", {}).get("properties", {})
    return "matchLabels" in properties or {"key", "operator"} <= set(expressions)


def find_selectors(schema: Mapping[str, Any], value: Any, path: str = "") -> Iterator[tuple[str, Mapping[str, Any]]]:
    """Every label selector in `value` (an object or part of one) with its field path, by `schema`'s shape."""
    if isinstance(value, Mapping):
        if _is_selector(schema):
            yield path, value
            return
        properties = schema.get("properties", {})
        additional = schema.get("additionalProperties")
        for key, item in value.items():
            if key in properties:
                yield from find_selectors(properties[key], item, f"{path}.{key}" if path else key)
            elif isinstance(additional, Mapping):
                yield from find_selectors(additional, item, f"{path}[{key}]")
    elif isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            yield from find_selectors(schema["items"], item, f"{path}[{index}]")


def _never(field: str, what: str, text: str, outcome: str, problems: list[str]) -> SchemaProblem:
    return SchemaProblem(field, f"no label can have the {what} {go_quote(text)}, so {outcome}: {'; '.join(problems)}")


def _match_labels(path: str, labels: Any) -> Iterator[SchemaProblem]:
    if not isinstance(labels, Mapping):
        return
    for key, value in labels.items():
        if problems := is_label_key(str(key)):
            yield _never(f"{path}.matchLabels", "key", str(key), "this selector never matches", problems)
        if isinstance(value, str) and (problems := is_label_value(value)):
            yield _never(f"{path}.matchLabels[{key}]", "value", value, "this selector never matches", problems)


def _match_expressions(path: str, expressions: Any) -> Iterator[SchemaProblem]:
    if not isinstance(expressions, list):
        return
    for index, expression in enumerate(expressions):
        if not isinstance(expression, Mapping):
            continue
        where = f"{path}.matchExpressions[{index}]"
        key, operator = str(expression.get("key") or ""), expression.get("operator")
        if operator in _KEY_OUTCOME and (problems := is_label_key(key)):
            yield _never(f"{where}.key", "key", key, _KEY_OUTCOME[operator], problems)
        if operator not in _VALUE_OUTCOME:
            continue
        for position, value in enumerate(expression.get("values") or []):
            if isinstance(value, str) and (problems := is_label_value(value)):
                yield _never(f"{where}.values[{position}]", "value", value, _VALUE_OUTCOME[operator], problems)


def selector_warnings(schema: Mapping[str, Any], obj: Mapping[str, Any]) -> list[SchemaProblem]:
    """The keys and values of `obj`'s label selectors that no label can have, each with its field and effect."""
    warnings: list[SchemaProblem] = []
    for path, selector in find_selectors(schema, obj):
        warnings += _match_labels(path, selector.get("matchLabels"))
        warnings += _match_expressions(path, selector.get("matchExpressions"))
    return warnings
