"""The schema engine on a made-up CRD: the API-server behaviours our own CRDs do not all exercise."""

from __future__ import annotations

from typing import Any

import pytest

from incidentio_operator.offline.schema import ObjectValidator, SchemaProblem

WIDGET_CRD: dict[str, Any] = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.test"},
    "spec": {
        "group": "example.test",
        "names": {"kind": "Widget", "plural": "widgets", "singular": "widget"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1beta1",
                "served": True,
                "storage": False,
                "schema": {"openAPIV3Schema": {"type": "object", "properties": {"spec": {"type": "object"}}}},
            },
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "apiVersion": {"type": "string"},
                            "kind": {"type": "string"},
                            "metadata": {"type": "object"},
                            "spec": {
                                "type": "object",
                                "x-kubernetes-validations": [
                                    {"rule": "self.size > 0", "message": "size must be positive"},
                                    {
                                        "rule": "!has(self.labels) || !('bad' in self.labels)",
                                        "message": "no bad label",
                                        "fieldPath": ".labels",
                                        "reason": "FieldValueDuplicate",
                                    },
                                ],
                                "properties": {
                                    "size": {"type": "integer", "format": "int64", "minimum": 0, "maximum": 10},
                                    "nickname": {"type": "string", "nullable": True, "default": "widget"},
                                    "labels": {
                                        "type": "object",
                                        "maxProperties": 4,
                                        "additionalProperties": {
                                            "type": "string",
                                            "maxLength": 8,
                                            "x-kubernetes-validations": [
                                                {"rule": "self != 'x'", "message": "x is not a label value"}
                                            ],
                                        },
                                    },
                                    "raw": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                    "ports": {
                                        "type": "array",
                                        "maxItems": 4,
                                        "x-kubernetes-list-type": "map",
                                        "x-kubernetes-list-map-keys": ["name"],
                                        "items": {
                                            "type": "object",
                                            "required": ["name"],
                                            "properties": {
                                                "name": {"type": "string", "maxLength": 8},
                                                "port": {
                                                    "type": "integer",
                                                    "x-kubernetes-validations": [
                                                        {"rule": "self == oldSelf", "message": "port is immutable"}
                                                    ],
                                                },
                                            },
                                        },
                                    },
                                },
                            },
                        },
                    }
                },
            },
        ],
    },
}


@pytest.fixture
def widgets() -> ObjectValidator:
    return ObjectValidator.from_crd(WIDGET_CRD)


def widget(**spec: Any) -> dict[str, Any]:
    return {"apiVersion": "example.test/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 1, **spec}}


def test_storage_version_is_the_default(widgets: ObjectValidator) -> None:
    assert (widgets.kind, widgets.api_version, widgets.plural) == ("Widget", "example.test/v1", "widgets")
    assert ObjectValidator.from_crd(WIDGET_CRD, "v1beta1").api_version == "example.test/v1beta1"


def test_rule_messages_reasons_and_field_paths(widgets: ObjectValidator) -> None:
    found = widgets.validate(widget(size=0, labels={"bad": "y", "ok": "x"}))
    assert found == [
        SchemaProblem("spec", 'Invalid value: "object": size must be positive'),
        SchemaProblem("spec.labels", "Duplicate value: no bad label"),
        SchemaProblem("spec.labels[ok]", 'Invalid value: "string": x is not a label value'),
    ]


def test_a_rule_that_cannot_be_evaluated_is_a_problem_too(widgets: ObjectValidator) -> None:
    found = widgets.validate({**widget(), "spec": {"labels": {}}})
    assert len(found) == 1
    assert found[0].field == "spec"
    assert "evaluating rule: self.size > 0" in found[0].message
    assert "activation" not in found[0].message


def test_numbers_and_maps_are_bounded(widgets: ObjectValidator) -> None:
    found = widgets.validate(widget(size=11, labels={"a": "123456789", "b": "", "c": "", "d": "", "e": ""}))
    assert [str(p) for p in found] == [
        "spec.size: Invalid value: 11: spec.size in body should be less than or equal to 10",
        "spec.labels: Too many: 5: must have at most 4 items",
        "spec.labels[a]: Too long: may not be longer than 8",
    ]


def test_int64_range(widgets: ObjectValidator) -> None:
    found = widgets.validate(widget(size=2**63))
    assert any("must be of type int64" in p.message for p in found)


def test_nullable_fields_keep_null_and_are_not_defaulted(widgets: ObjectValidator) -> None:
    assert widgets.apply_defaults(widget(nickname=None))["spec"]["nickname"] is None
    assert widgets.apply_defaults(widget())["spec"]["nickname"] == "widget"
    assert widgets.validate(widget(nickname=None)) == []


def test_preserve_unknown_fields_are_kept(widgets: ObjectValidator) -> None:
    obj = widget(raw={"anything": {"goes": [1]}}, other=True)
    assert widgets.prune(obj)["spec"]["raw"] == {"anything": {"goes": [1]}}
    assert widgets.unknown_fields(obj) == ["spec.other"]


def test_transition_rules_follow_map_list_items_by_key(widgets: ObjectValidator) -> None:
    old = widget(ports=[{"name": "http", "port": 80}, {"name": "https", "port": 443}])
    reordered = widget(ports=[{"name": "https", "port": 443}, {"name": "http", "port": 80}, {"name": "new", "port": 1}])
    assert widgets.validate(reordered, old) == []
    changed = widget(ports=[{"name": "https", "port": 8443}])
    assert widgets.validate(changed, old) == [
        SchemaProblem("spec.ports[0].port", 'Invalid value: "integer": port is immutable')
    ]
    assert widgets.validate(changed) == []


def test_duplicate_map_keys_are_refused(widgets: ObjectValidator) -> None:
    found = widgets.validate(widget(ports=[{"name": "http"}, {"name": "http", "port": 1}]))
    assert [str(p) for p in found] == ['spec.ports[1]: Duplicate value: {"name":"http"}']


def test_a_value_cel_cannot_hold_is_refused_not_raised(widgets: ObjectValidator) -> None:
    found = widgets.validate(widget(ports=[{"name": "big", "port": 2**63}]), widget(ports=[{"name": "big", "port": 1}]))
    # Every rule whose self holds the value fails to evaluate, as it would in the API server.
    assert {p.field for p in found} == {"spec", "spec.labels", "spec.ports[0].port"}
    assert all("overflow" in p.message for p in found)
