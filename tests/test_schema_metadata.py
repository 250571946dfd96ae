"""The API server's metadata rules, offline: names by kind, namespaces, labels, annotations, label selectors."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from incidentio_operator.offline import names
from incidentio_operator.offline.metadata import TOTAL_ANNOTATION_SIZE_LIMIT, metadata_problems, name_rule
from incidentio_operator.offline.schema import SchemaProblem, load_crds
from incidentio_operator.offline.selectors import find_selectors, selector_warnings

LABEL_VALUE_RULE = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', and must start "
    "and end with an alphanumeric character (e.g. 'MyValue',  or 'my_value',  or '12345', regex used for "
    "validation is '(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?')"
)
SUBDOMAIN_RULE = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must "
    "start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is "
    "'[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
)
KEY_NAME_RULE = (
    "name part must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for validation is "
    "'([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]')"
)


def alert(**metadata: Any) -> dict[str, Any]:
    return {
        "apiVersion": "alerting.armor.dev/v1alpha1",
        "kind": "DataAlert",
        "metadata": {"name": "orders-freshness", "namespace": "team", **metadata},
    }


# The success and error cases of apimachinery's own tests (pkg/api/validate/content/kube_test.go).
@pytest.mark.parametrize(
    "key",
    [
        "simple",
        "now-with-dashes",
        "1-starts-with-num",
        "1234",
        "simple/simple",
        "now.with.dots/simple",
        "1-num.2-num/3-num",
        "1.2.3.4/5678",
        "Uppercase_Is_OK_123",
        "example.com/Uppercase_Is_OK_123",
        "a" * 63,
        "a" * 253 + "/" + "b" * 63,
    ],
)
def test_label_keys_apimachinery_accepts(key: str) -> None:
    assert names.is_label_key(key) == []


@pytest.mark.parametrize(
    "key",
    [
        "nospecialchars%^=@",
        "cantendwithadash-",
        "-cantstartwithadash-",
        "only/one/slash",
        "Example.com/abc",
        "example_com/abc",
        "example.com/",
        "/simple",
        "a" * 64,
        "a" * 254 + "/abc",
    ],
)
def test_label_keys_apimachinery_refuses(key: str) -> None:
    assert names.is_label_key(key)


@pytest.mark.parametrize(
    "value", ["simple", "now-with-dashes", "1-starts-with-num", "end-with-num-1", "1234", "a" * 63, ""]
)
def test_label_values_apimachinery_accepts(value: str) -> None:
    assert names.is_label_value(value) == []


@pytest.mark.parametrize(
    "value",
    [
        "nospecialchars%^=@",
        "Tama-nui-te-rā.is.Māori.sun",
        "\\backslashes\\are\\bad",
        "-starts-with-dash",
        "ends-with-dash-",
        ".starts.with.dot",
        "ends.with.dot.",
        "a" * 64,
        "data eng",
        "trailing-newline\n",
    ],
)
def test_label_values_apimachinery_refuses(value: str) -> None:
    assert names.is_label_value(value)


def test_a_label_value_too_long_and_malformed_gets_both_messages() -> None:
    assert names.is_label_value("a b" * 30) == ["must be no more than 63 bytes", LABEL_VALUE_RULE]


def test_lengths_count_bytes_as_go_does() -> None:
    assert names.is_label_key("é" * 32) == ["name part must be no more than 63 bytes", KEY_NAME_RULE]


@pytest.mark.parametrize(
    ("key", "problems"),
    [
        ("/team", ["prefix part must be non-empty"]),
        ("example.com/", ["name part must be non-empty", KEY_NAME_RULE]),
        ("Example.com/team", [f"prefix part {SUBDOMAIN_RULE}"]),
        (
            "a/b/c",
            [
                "a valid label key must consist of alphanumeric characters, '-', '_' or '.', and must start and end "
                "with an alphanumeric character (e.g. 'MyName',  or 'my.name',  or '123-abc', regex used for "
                "validation is '([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]') with an optional DNS subdomain prefix "
                "and '/' (e.g. 'example.com/MyName')"
            ],
        ),
    ],
)
def test_label_key_messages_are_apimachinerys(key: str, problems: list[str]) -> None:
    assert names.is_label_key(key) == problems


@pytest.mark.parametrize(
    ("group", "kind", "name", "valid"),
    [
        ("alerting.armor.dev", "DataAlert", "orders.freshness-1", True),
        ("alerting.armor.dev", "DataAlert", "Orders", False),
        ("", "ConfigMap", "a" * 253, True),
        ("", "ConfigMap", "a" * 254, False),
        ("", "Namespace", "data-platform", True),
        ("", "Namespace", "data.platform", False),
        ("", "Service", "api", True),
        ("", "Service", "1api", False),
        ("rbac.authorization.k8s.io", "ClusterRole", "system:incidentio-operator", True),
        ("rbac.authorization.k8s.io", "RoleBinding", "a/b", False),
        ("rbac.authorization.k8s.io", "Role", "..", False),
        ("apps", "Deployment", "incidentio-operator", True),
    ],
)
def test_names_follow_the_rule_of_their_kind(group: str, kind: str, name: str, valid: bool) -> None:
    assert (name_rule(group, kind)(name) == []) is valid


def test_a_namespace_with_dots_is_told_so() -> None:
    assert names.is_dns1123_label("data.platform") == ["must not contain dots"]


def test_the_label_value_of_the_issue_is_refused_in_the_api_servers_words() -> None:
    assert metadata_problems(alert(labels={"team": "data eng"}), namespaced=True) == [
        SchemaProblem("metadata.labels", f'Invalid value: "data eng": {LABEL_VALUE_RULE}')
    ]


def test_values_are_quoted_as_go_quotes_them() -> None:
    problems = metadata_problems(alert(labels={"team": "data\u200beng\n"}), namespaced=True)
    assert problems == [SchemaProblem("metadata.labels", f'Invalid value: "data\\u200beng\\n": {LABEL_VALUE_RULE}')]


def test_a_label_key_is_reported_with_the_key_as_value() -> None:
    problems = metadata_problems(alert(labels={"data team": "x"}), namespaced=True)
    assert problems == [SchemaProblem("metadata.labels", f'Invalid value: "data team": {KEY_NAME_RULE}')]


def test_annotation_keys_ignore_case_and_their_size_is_bounded() -> None:
    assert metadata_problems(alert(annotations={"Example.COM/Owner": "x"}), namespaced=True) == []
    assert metadata_problems(alert(annotations={"owner team": "x"}), namespaced=True) == [
        SchemaProblem("metadata.annotations", f'Invalid value: "owner team": {KEY_NAME_RULE}')
    ]
    at_limit = {"note": "x" * (TOTAL_ANNOTATION_SIZE_LIMIT - len("note"))}
    assert metadata_problems(alert(annotations=at_limit), namespaced=True) == []
    over = {"note": at_limit["note"] + "x"}
    assert metadata_problems(alert(annotations=over), namespaced=True) == [
        SchemaProblem("metadata.annotations", "Too long: may not be more than 262144 bytes")
    ]


def test_names_namespaces_and_generate_names() -> None:
    body = alert(name="Orders", namespace="Team")
    assert [problem.field for problem in metadata_problems(body, namespaced=True)] == [
        "metadata.name",
        "metadata.namespace",
    ]
    nameless = alert()
    del nameless["metadata"]["name"]
    assert metadata_problems(nameless, namespaced=True) == [
        SchemaProblem("metadata.name", "Required value: name or generateName is required")
    ]
    nameless["metadata"]["generateName"] = "orders-"
    assert metadata_problems(nameless, namespaced=True) == []
    nameless["metadata"]["generateName"] = "Orders-"
    assert [problem.field for problem in metadata_problems(nameless, namespaced=True)] == ["metadata.generateName"]
    no_namespace = alert()
    del no_namespace["metadata"]["namespace"]
    assert metadata_problems(no_namespace, namespaced=True) == [SchemaProblem("metadata.namespace", "Required value")]
    assert metadata_problems(no_namespace, namespaced=False) == []


def test_yaml_values_that_are_not_strings_are_decoding_errors() -> None:
    problems = metadata_problems(alert(labels={"enabled": True, "version": 1.5, "team": "data"}), namespaced=True)
    assert problems == [
        SchemaProblem(
            "metadata.labels", "cannot unmarshal bool into Go struct field ObjectMeta.metadata.labels of type string"
        ),
        SchemaProblem(
            "metadata.labels", "cannot unmarshal number into Go struct field ObjectMeta.metadata.labels of type string"
        ),
    ]
    assert metadata_problems(alert(annotations=["a"]), namespaced=True) == [
        SchemaProblem(
            "metadata.annotations",
            "cannot unmarshal array into Go struct field ObjectMeta.metadata.annotations of type map[string]string",
        )
    ]
    assert metadata_problems(alert(name=42), namespaced=True)[0].message.startswith("cannot unmarshal number")


RULE_SCHEMA = next(
    crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for crd in load_crds()
    if crd["spec"]["names"]["kind"] == "AlertRule"
)


def rule(selector: dict[str, Any]) -> dict[str, Any]:
    return {"spec": {"scope": {"assetSelector": selector}, "destinations": [{"name": "pager"}]}}


def test_every_selector_of_the_crds_is_found_by_its_shape() -> None:
    """Each CRD's label selectors, wherever they are: AlertBlackout's ruleSelector and AlertRule's assetSelector."""
    found = []
    for crd in load_crds():
        schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        found += [(crd["spec"]["names"]["kind"], path) for path, _ in find_selectors(schema, _fill(schema))]
    assert found == [("AlertBlackout", "spec.ruleSelector"), ("AlertRule", "spec.scope.assetSelector")]


def _fill(schema: dict[str, Any]) -> Any:
    """An object with every property of `schema` present, so that a walk reaches every place."""
    if "properties" in schema:
        return {name: _fill(child) for name, child in schema["properties"].items()}
    if isinstance(schema.get("items"), dict):
        return [_fill(schema["items"])]
    return ""


def test_selector_values_no_label_can_have_are_warned_with_their_path() -> None:
    warnings = selector_warnings(
        RULE_SCHEMA,
        rule(
            {
                "matchLabels": {"team": "data eng", "tier": "gold"},
                "matchExpressions": [
                    {"key": "env", "operator": "In", "values": ["prod", "pre prod"]},
                    {"key": "env", "operator": "NotIn", "values": ["dev env"]},
                    {"key": "data team", "operator": "Exists"},
                    {"key": "data team", "operator": "DoesNotExist"},
                ],
            }
        ),
    )
    path = "spec.scope.assetSelector"
    assert [(warning.field, warning.message.split(":")[0]) for warning in warnings] == [
        (f"{path}.matchLabels[team]", 'no label can have the value "data eng", so this selector never matches'),
        (f"{path}.matchExpressions[0].values[1]", 'no label can have the value "pre prod", so it never matches'),
        (f"{path}.matchExpressions[1].values[0]", 'no label can have the value "dev env", so it excludes nothing'),
        (f"{path}.matchExpressions[2].key", 'no label can have the key "data team", so this requirement never holds'),
        (f"{path}.matchExpressions[3].key", 'no label can have the key "data team", so this requirement always holds'),
    ]
    assert warnings[0].message.endswith(LABEL_VALUE_RULE)


def test_a_valid_selector_warns_of_nothing() -> None:
    selector = {
        "matchLabels": {"team": "data-eng", "example.com/tier": ""},
        "matchExpressions": [{"key": "env", "operator": "In", "values": ["prod", "pre_prod"]}],
    }
    assert selector_warnings(RULE_SCHEMA, rule(copy.deepcopy(selector))) == []
    assert selector_warnings(RULE_SCHEMA, rule({"matchLabels": {"bad key": "x"}}))[0].field == (
        "spec.scope.assetSelector.matchLabels"
    )
