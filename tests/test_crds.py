"""The CRD manifests themselves: what a real API server checks when they are applied, checked offline."""

from __future__ import annotations

import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
import yaml

from incidentio_operator.offline.schema import ObjectValidator, crds_dir, load_crds

GROUP = "alerting.armor.dev"
NAMES = {
    "IncidentIoDestination": ("incidentiodestinations", "incidentiodestination", ["iod"]),
    "AlertRule": ("alertrules", "alertrule", ["arule"]),
    "DataAlert": ("dataalerts", "dataalert", ["dalert"]),
    "AlertBlackout": ("alertblackouts", "alertblackout", ["blackout"]),
}
CRDS = load_crds()
BY_KIND = {crd["spec"]["names"]["kind"]: crd for crd in CRDS}

# Functions of Kubernetes CEL (the CEL standard library plus the Kubernetes extensions) that a rule may call.
KUBERNETES_CEL_FUNCTIONS = {
    "has",
    "size",
    "matches",
    "duration",
    "timestamp",
    "all",
    "exists",
    "exists_one",
    "map",
    "filter",
    "int",
    "uint",
    "double",
    "string",
    "bool",
    "bytes",
    "type",
    "dyn",
    "startsWith",
    "endsWith",
    "contains",
    "lowerAscii",
    "upperAscii",
    "trim",
    "split",
    "join",
    "replace",
    "indexOf",
    "lastIndexOf",
    "isSorted",
    "sum",
    "min",
    "max",
    "url",
    "quantity",
    "isQuantity",
    "ip",
    "cidr",
    "format",
}


def schema_of(crd: Mapping[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    return schema


def nodes(schema: Mapping[str, Any], path: str = "") -> Iterator[tuple[str, Mapping[str, Any], list[str]]]:
    """Every schema node with its path and the kinds of containers above it ("array", "map")."""
    yield from _nodes(schema, path, [])


def _nodes(
    schema: Mapping[str, Any], path: str, containers: list[str]
) -> Iterator[tuple[str, Mapping[str, Any], list[str]]]:
    yield path, schema, containers
    for name, child in schema.get("properties", {}).items():
        yield from _nodes(child, f"{path}.{name}", containers)
    if isinstance(schema.get("items"), dict):
        yield from _nodes(schema["items"], f"{path}[*]", [*containers, path])
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _nodes(schema["additionalProperties"], f"{path}[*]", [*containers, path])


def node_at(schema: Mapping[str, Any], fields: list[str]) -> Mapping[str, Any] | None:
    node: Mapping[str, Any] | None = schema
    for field in fields:
        if node is None:
            return None
        if field == "[]":
            node = node.get("items")
        else:
            node = node.get("properties", {}).get(field)
    return node


def all_rules() -> Iterator[tuple[str, str, Mapping[str, Any], Mapping[str, Any], list[str]]]:
    for kind, crd in BY_KIND.items():
        for path, node, containers in nodes(schema_of(crd)):
            for rule in node.get("x-kubernetes-validations", []):
                yield kind, path, node, rule, containers


def test_the_folder_holds_the_four_crds_and_a_kustomization_listing_them() -> None:
    assert sorted(BY_KIND) == sorted(NAMES)
    kustomization = yaml.safe_load((crds_dir() / "kustomization.yaml").read_text())
    listed = sorted(kustomization["resources"])
    assert listed == sorted(
        ["incidentiodestinations.yaml", "alertrules.yaml", "dataalerts.yaml", "alertblackouts.yaml"]
    )
    for file in listed:
        assert (crds_dir() / file).is_file()


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_names_are_the_contract_and_agree_with_metadata_name(kind: str) -> None:
    crd = BY_KIND[kind]
    plural, singular, short_names = NAMES[kind]
    names = crd["spec"]["names"]
    assert crd["apiVersion"] == "apiextensions.k8s.io/v1"
    assert crd["metadata"]["name"] == f"{plural}.{GROUP}"
    assert crd["spec"]["group"] == GROUP
    assert crd["spec"]["scope"] == "Namespaced"
    assert (names["plural"], names["singular"], names["shortNames"]) == (plural, singular, short_names)
    assert names["listKind"] == f"{kind}List"
    assert names["categories"] == ["armor"]


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_one_served_storage_version_with_a_status_subresource(kind: str) -> None:
    versions = BY_KIND[kind]["spec"]["versions"]
    assert [(v["name"], v["served"], v["storage"]) for v in versions] == [("v1alpha1", True, True)]
    assert versions[0]["subresources"] == {"status": {}}


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_schema_is_structural(kind: str) -> None:
    for path, node, _ in nodes(schema_of(BY_KIND[kind])):
        assert "type" in node, f"{kind} {path or '<root>'}: every node needs a type"
        assert not ("properties" in node and "additionalProperties" in node), f"{kind} {path}"
        assert node.get("additionalProperties", {}) is not False, f"{kind} {path}"
        for forbidden in ("$ref", "uniqueItems", "oneOf", "anyOf", "allOf", "not", "nullable"):
            assert forbidden not in node, f"{kind} {path}: {forbidden} is not used in a structural schema here"
        if node["type"] == "array":
            assert isinstance(node.get("items"), dict), f"{kind} {path}: arrays need items"
        if path.startswith(".status"):
            assert "x-kubernetes-preserve-unknown-fields" not in node, f"{kind} {path}"


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_metadata_is_left_to_the_api_server(kind: str) -> None:
    # The API server refuses anything but name and generateName restrictions there, a description included.
    assert schema_of(BY_KIND[kind])["properties"]["metadata"] == {"type": "object"}


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_list_map_keys_are_required_in_the_items(kind: str) -> None:
    checked = 0
    for path, node, _ in nodes(schema_of(BY_KIND[kind])):
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            items = node["items"]
            for key in keys:
                assert key in items.get("required", []) or "default" in items["properties"][key], f"{path}"
            checked += 1
        if node.get("x-kubernetes-list-type") == "set":
            assert node["items"]["type"] in ("string", "integer", "number", "boolean"), path
    assert checked >= 1


def test_conditions_are_the_same_on_every_kind() -> None:
    conditions = [schema_of(crd)["properties"]["status"]["properties"]["conditions"] for crd in CRDS]
    assert all(schema == conditions[0] for schema in conditions)
    assert conditions[0]["items"]["required"] == ["type", "status"]


def _defaults() -> Iterator[tuple[str, str, Mapping[str, Any]]]:
    for kind, crd in BY_KIND.items():
        for path, node, _ in nodes(schema_of(crd)):
            if "default" in node:
                yield kind, path, node


@pytest.mark.parametrize(("kind", "path", "node"), list(_defaults()), ids=lambda v: v if isinstance(v, str) else "")
def test_every_default_is_valid_against_its_schema(kind: str, path: str, node: Mapping[str, Any]) -> None:
    # The API server validates each default, with the nested defaults applied, including CEL rules.
    wrapper = ObjectValidator(
        kind="Default",
        api_version="defaults.test/v1",
        plural="defaults",
        schema={
            "type": "object",
            "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "value": node},
        },
    )
    obj = wrapper.apply_defaults({"apiVersion": "defaults.test/v1", "kind": "Default", "value": node["default"]})
    assert wrapper.validate(obj) == [], f"{kind} {path}"
    assert wrapper.unknown_fields(obj) == [], f"{kind} {path}"


def test_objects_defaulted_with_empty_objects_get_their_nested_defaults() -> None:
    spec = schema_of(BY_KIND["IncidentIoDestination"])["properties"]["spec"]["properties"]
    for name in ("incident", "connectionTest"):
        assert spec[name]["default"] == {}
        assert any("default" in child for child in spec[name]["properties"].values())


def _jsonpath_fields(json_path: str) -> tuple[list[str], list[tuple[list[str], str]]]:
    """The fields a printer column's JSONPath walks, and the fields its filters read relative to a list."""
    filters: list[tuple[list[str], str]] = []
    fields: list[str] = []
    for token in re.findall(r"\[[^\]]*\]|\.[A-Za-z_][A-Za-z0-9_]*", json_path):
        if token.startswith("["):
            filter_field = re.search(r"@\.([A-Za-z_][A-Za-z0-9_]*)", token)
            fields.append("[]")
            if filter_field:
                filters.append((list(fields), filter_field.group(1)))
        else:
            fields.append(token[1:])
    return fields, filters


COLUMN_TYPES = {"string": "string", "integer": "integer", "number": "number", "boolean": "boolean"}


@pytest.mark.parametrize("kind", sorted(NAMES))
def test_printer_columns_read_fields_that_exist(kind: str) -> None:
    version = BY_KIND[kind]["spec"]["versions"][0]
    schema = schema_of(BY_KIND[kind])
    for column in version["additionalPrinterColumns"]:
        fields, filters = _jsonpath_fields(column["jsonPath"])
        assert "".join(f"[{f}]" if f == "[]" else f".{f}" for f in fields), column
        if fields[0] == "metadata":
            assert fields == ["metadata", "creationTimestamp"] and column["type"] == "date"
            continue
        node = node_at(schema, fields)
        assert node is not None, f"{kind} column {column['name']}: {column['jsonPath']} reads no field"
        for list_fields, filter_field in filters:
            item = node_at(schema, list_fields)
            assert item is not None and filter_field in item["properties"], column["jsonPath"]
        if column["type"] == "date":
            assert node.get("format") == "date-time", column
        else:
            assert node["type"] == COLUMN_TYPES[column["type"]], column


def test_printer_columns_are_the_contract() -> None:
    def columns(kind: str) -> list[str]:
        return [c["name"] for c in BY_KIND[kind]["spec"]["versions"][0]["additionalPrinterColumns"]]

    assert columns("IncidentIoDestination") == ["Ready", "Reason", "Mode", "Last Test", "Age"]
    assert columns("AlertRule") == ["Ready", "Destinations", "Matched", "Age"]
    assert columns("DataAlert") == ["State", "Event", "Severity", "Incident", "Ready", "Age"]
    assert columns("AlertBlackout") == ["Active", "Next", "Age"]


def _referenced_fields(rule: str, variable: str) -> list[list[str]]:
    return [chain.split(".")[1:] for chain in re.findall(rf"\b{variable}((?:\.[A-Za-z_][A-Za-z0-9_]*)+)", rule)]


def _string_literals_removed(rule: str) -> str:
    return re.sub(r"'[^']*'", "''", rule)


@pytest.mark.parametrize(
    ("kind", "path", "node", "rule", "containers"), list(all_rules()), ids=lambda v: v if isinstance(v, str) else ""
)
def test_cel_rules_fit_the_api_server(
    kind: str, path: str, node: Mapping[str, Any], rule: Mapping[str, Any], containers: list[str]
) -> None:
    text = rule["rule"]
    assert rule["message"], "every rule says what is wrong in words"
    assert rule.get("reason", "FieldValueInvalid") in {
        "FieldValueInvalid",
        "FieldValueForbidden",
        "FieldValueRequired",
        "FieldValueDuplicate",
    }
    code = _string_literals_removed(text)
    called = set(re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", code))
    assert called <= KUBERNETES_CEL_FUNCTIONS, f"{kind} {path}: {called - KUBERNETES_CEL_FUNCTIONS}"
    # The API server refuses rules that reference fields the schema does not have.
    for chain in _referenced_fields(code, "self") + _referenced_fields(code, "oldSelf"):
        fields = [field for field in chain if field not in called]
        assert node_at(node, fields) is not None, f"{kind} {path}: {text} reads {'.'.join(fields)}"
        # Its cost estimate needs a bound on every string, list and map a rule reads.
        assert _bounded(node_at(node, fields) or {}), f"{kind} {path}: {'.'.join(fields)} needs a max"
    if "fieldPath" in rule:
        assert node_at(node, rule["fieldPath"].lstrip(".").split(".")) is not None, rule["fieldPath"]
    assert _bounded(node), f"{kind} {path}: the rule's own value needs a max"
    for container in containers:
        container_node = node_at(schema_of(BY_KIND[kind]), _path_fields(container))
        assert container_node is not None and _bounded(container_node), f"{kind} {container} needs a max"


def _path_fields(path: str) -> list[str]:
    return [("[]" if part == "[*]" else part) for part in re.findall(r"\[\*\]|[A-Za-z_][A-Za-z0-9_]*", path)]


def _bounded(node: Mapping[str, Any]) -> bool:
    if node.get("type") == "string" and "enum" not in node:
        return "maxLength" in node
    if node.get("type") == "array":
        return "maxItems" in node and _bounded(node["items"])
    if node.get("type") == "object" and isinstance(node.get("additionalProperties"), dict):
        return "maxProperties" in node and _bounded(node["additionalProperties"])
    return True


def test_every_rule_compiles_and_is_found_by_the_validator() -> None:
    assert len(list(all_rules())) >= 6
    for crd in CRDS:
        ObjectValidator.from_crd(crd)


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl is not installed")
def test_kubectl_kustomize_renders_the_four_crds() -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(crds_dir())], check=True, capture_output=True, text=True, timeout=60
    ).stdout
    documents = [doc for doc in yaml.safe_load_all(rendered) if doc]
    assert sorted(doc["metadata"]["name"] for doc in documents) == sorted(crd["metadata"]["name"] for crd in CRDS)
