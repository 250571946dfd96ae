"""The API reference (docs/api.md), generated from the CRD schemas so that it cannot drift from them."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Mapping
from typing import Any

from incidentio_operator.offline.schema import load_crds

COMMAND = "python -m incidentio_operator.offline.apidocs docs/api.md"
_KIND_ORDER = ("IncidentIoDestination", "AlertRule", "DataAlert", "AlertBlackout")


def render() -> str:
    """The whole reference, as Markdown."""
    crds = sorted(load_crds(), key=lambda crd: _KIND_ORDER.index(crd["spec"]["names"]["kind"]))
    group = crds[0]["spec"]["group"]
    lines = [
        "# API reference",
        "",
        f"Generated from `crds/` by `{COMMAND}`; edit the CRDs, not this file.",
        "",
        f"All kinds are in the API group `{group}` and are namespaced; `kubectl get armor` lists them all.",
        "",
    ]
    lines += [f"- [{crd['spec']['names']['kind']}](#{crd['spec']['names']['kind'].lower()})" for crd in crds]
    for crd in crds:
        lines += _kind(crd)
    return "\n".join(lines) + "\n"


def _kind(crd: Mapping[str, Any]) -> list[str]:
    spec = crd["spec"]
    names = spec["names"]
    version = next(entry for entry in spec["versions"] if entry.get("storage"))
    schema = version["schema"]["openAPIV3Schema"]
    columns = ", ".join(column["name"] for column in version.get("additionalPrinterColumns", []))
    lines = [
        "",
        f"## {names['kind']}",
        "",
        _text(schema.get("description", "")),
        "",
        f"- `apiVersion: {spec['group']}/{version['name']}`",
        f"- Resource `{names['plural']}`, short names {_codes(names.get('shortNames', []))}, "
        f"categories {_codes(names.get('categories', []))}",
        f"- `kubectl get` columns: {columns}",
    ]
    for part in ("spec", "status"):
        part_schema = schema["properties"][part]
        lines += [
            "",
            f"### {names['kind']} `{part}`",
            "",
            "| Field | Type | Default | Description | Validation |",
            "|---|---|---|---|---|",
            _row(part, part_schema, part in schema.get("required", [])),
        ]
        lines += [_row(path, node, required) for path, node, required in _fields(part_schema, part)]
    return lines


def _fields(schema: Mapping[str, Any], path: str) -> Iterator[tuple[str, Mapping[str, Any], bool]]:
    required = set(schema.get("required", []))
    for name, child in schema.get("properties", {}).items():
        child_path = f"{path}.{name}"
        yield child_path, child, name in required
        yield from _fields(child, child_path)
        for inner in (child.get("items"), child.get("additionalProperties")):
            # A list's items and a map's values, when they are objects: their fields under ``path[]``.
            if isinstance(inner, dict) and inner.get("type") == "object":
                yield from _fields(inner, f"{child_path}[]")


def _row(path: str, node: Mapping[str, Any], required: bool) -> str:
    default = f"`{_json(node['default'])}`" if "default" in node else ""
    cells = [f"`{path}`", _type(node), default, _text(node.get("description", "")), _validation(node, required)]
    return "| " + " | ".join(cells) + " |"


def _type(node: Mapping[str, Any]) -> str:
    node_type = str(node.get("type", "any"))
    if node_type == "array":
        return f"[]{_type(node['items'])}"
    if node_type == "object" and isinstance(node.get("additionalProperties"), dict):
        return f"map[string]{_type(node['additionalProperties'])}"
    if "format" in node and node["format"] != "int64":
        return f"{node_type} ({node['format']})"
    return node_type


def _validation(node: Mapping[str, Any], required: bool) -> str:
    facts = ["required"] if required else []
    facts += _constraints(node)
    for inner, label in ((node.get("items"), "items"), (node.get("additionalProperties"), "values")):
        if isinstance(inner, dict) and inner.get("type") != "object":
            facts += [f"{label}: {fact}" for fact in _constraints(inner)]
    return "; ".join(facts)


def _constraints(node: Mapping[str, Any]) -> list[str]:
    facts: list[str] = []
    if "enum" in node:
        facts.append("one of " + ", ".join(f"`{value}`" for value in node["enum"]))
    if "pattern" in node:
        facts.append(f"matches `{node['pattern']}`")
    bounds = (
        ("minLength", "at least", "character"),
        ("maxLength", "at most", "character"),
        ("minItems", "at least", "item"),
        ("maxItems", "at most", "item"),
        ("maxProperties", "at most", "entry"),
        ("minimum", "at least", ""),
        ("maximum", "at most", ""),
    )
    facts += [_bound(relation, node[keyword], unit) for keyword, relation, unit in bounds if keyword in node]
    if node.get("x-kubernetes-list-type") == "map":
        facts.append(f"unique by {_codes(node['x-kubernetes-list-map-keys'])}")
    elif node.get("x-kubernetes-list-type") == "set":
        facts.append("unique items")
    facts += [_text(rule["message"]) for rule in node.get("x-kubernetes-validations", [])]
    return facts


def _bound(relation: str, limit: int, unit: str) -> str:
    if not unit:
        return f"{relation} {limit}"
    if limit == 1:
        return f"{relation} 1 {unit}"
    return f"{relation} {limit} {'entries' if unit == 'entry' else unit + 's'}"


def _codes(values: list[str]) -> str:
    return ", ".join(f"`{value}`" for value in values)


def _json(value: Any) -> str:
    return json.dumps(value, separators=(", ", ": "))


def _text(text: str) -> str:
    """One table cell's worth of text: a single line, with pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def main() -> None:
    """Print the reference, or write it to the path given as the first argument."""
    rendered = render()
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as output:
            output.write(rendered)
    else:
        sys.stdout.write(rendered)


if __name__ == "__main__":
    main()
