"""The CEL rules of a CRD schema (`x-kubernetes-validations`): compiled once, evaluated as the API server does."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import celpy
from celpy.adapter import json_to_cel
from celpy.evaluation import CELEvalError

from incidentio_operator.offline.schema.problems import SchemaProblem, join, render_json

# CEL `reason` values the API server knows, and how each starts its message.
_CEL_REASONS = {
    "FieldValueInvalid": "Invalid value",
    "FieldValueForbidden": "Forbidden",
    "FieldValueRequired": "Required value",
    "FieldValueDuplicate": "Duplicate value",
}

_OLD_SELF = re.compile(r"\boldSelf\b")

# Stands for "no old value": a create, or an item or property the old object did not have.
ABSENT = object()


@dataclass(frozen=True, eq=False)
class _Rule:
    rule: str
    program: celpy.Runner
    message: str
    field_path: str
    reason: str
    transition: bool


@dataclass
class RuleNode:
    """The rules at one place of the schema and the subtrees below it that have rules: a tree that mirrors it."""

    schema_type: str
    rules: list[_Rule]
    properties: dict[str, RuleNode]
    items: RuleNode | None
    values: RuleNode | None
    map_keys: tuple[str, ...]


_CEL = celpy.Environment()


def compile_rules(schema: Mapping[str, Any]) -> RuleNode | None:
    """The rules of `schema` and below, or None when there are none (so that the walk skips the subtree)."""
    rules = [
        _Rule(
            rule=spec["rule"],
            program=_CEL.program(_CEL.compile(spec["rule"])),
            message=spec.get("message") or f"failed rule: {spec['rule']}",
            field_path=spec.get("fieldPath", ""),
            reason=spec.get("reason", "FieldValueInvalid"),
            transition=bool(_OLD_SELF.search(spec["rule"])),
        )
        for spec in schema.get("x-kubernetes-validations", [])
    ]
    properties = {
        name: node for name, child in schema.get("properties", {}).items() if (node := compile_rules(child)) is not None
    }
    items = compile_rules(schema["items"]) if isinstance(schema.get("items"), dict) else None
    additional = schema.get("additionalProperties")
    values = compile_rules(additional) if isinstance(additional, dict) else None
    if not rules and not properties and items is None and values is None:
        return None
    return RuleNode(
        schema_type=str(schema.get("type", "object")),
        rules=rules,
        properties=properties,
        items=items,
        values=values,
        map_keys=(
            tuple(schema.get("x-kubernetes-list-map-keys", [])) if schema.get("x-kubernetes-list-type") == "map" else ()
        ),
    )


def _correlated_item(item: Any, old_list: Any, keys: tuple[str, ...]) -> Any:
    """The old list's item with the same map keys: only `map` lists correlate items across an update."""
    if not keys or not isinstance(old_list, list) or not isinstance(item, dict):
        return ABSENT
    identity = [item.get(key) for key in keys]
    for old_item in old_list:
        if isinstance(old_item, dict) and [old_item.get(key) for key in keys] == identity:
            return old_item
    return ABSENT


def _child(old: Any, key: str) -> Any:
    return old[key] if isinstance(old, dict) and key in old else ABSENT


def evaluate_rules(node: RuleNode, value: Any, old: Any, path: str, problems: list[SchemaProblem]) -> None:
    """Append to `problems` every rule at and below `node` that `value` (updated from `old`, or ABSENT) breaks."""
    if node.rules:
        self_json = render_json(value)
        old_json = None if old is ABSENT else render_json(old)
        for rule in node.rules:
            if rule.transition and old_json is None:
                continue
            problem = _problem(rule, _outcome(rule, self_json, old_json), node.schema_type, path)
            if problem is not None:
                problems.append(problem)
    if isinstance(value, dict):
        for name, child in node.properties.items():
            if name in value:
                evaluate_rules(child, value[name], _child(old, name), join(path, name), problems)
        if node.values is not None:
            for key, item in value.items():
                if key not in node.properties:
                    evaluate_rules(node.values, item, _child(old, key), f"{path}[{key}]", problems)
    if isinstance(value, list) and node.items is not None:
        for index, item in enumerate(value):
            old_item = _correlated_item(item, old, node.map_keys)
            evaluate_rules(node.items, item, old_item, f"{path}[{index}]", problems)


# CEL is pure, and celpy takes a few hundred microseconds a rule: the API stand-in writes the same spec
# again with every status update, so outcomes are remembered by the JSON of self and oldSelf.
@lru_cache(maxsize=4096)
def _outcome(rule: _Rule, self_json: str, old_json: str | None) -> bool | str:
    """True or False, or the evaluation error's text."""
    try:
        activation = {"self": json_to_cel(json.loads(self_json))}
        if old_json is not None:
            activation["oldSelf"] = json_to_cel(json.loads(old_json))
        return bool(rule.program.evaluate(activation))
    except CELEvalError as error:
        # celpy appends its whole activation to some messages; the API server's say only what went wrong.
        return str(error.args[0]).split(" (in activation", 1)[0]
    except (ValueError, TypeError) as error:
        # A value CEL cannot represent (an integer beyond int64, say) refuses the object; it must not crash.
        return str(error)


def _problem(rule: _Rule, outcome: bool | str, schema_type: str, path: str) -> SchemaProblem | None:
    field = f"{path}{rule.field_path}".lstrip(".")
    if outcome is True:
        return None
    if isinstance(outcome, str):
        return SchemaProblem(field, f'Invalid value: "{schema_type}": {outcome} evaluating rule: {rule.rule}')
    prefix = _CEL_REASONS.get(rule.reason, "Invalid value")
    if prefix == "Invalid value":
        return SchemaProblem(field, f'Invalid value: "{schema_type}": {rule.message}')
    return SchemaProblem(field, f"{prefix}: {rule.message}")
