"""The API stand-in's request semantics, checked over HTTP the way kubectl and kopf see them."""

from __future__ import annotations

import base64
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from incidentio_operator.standins.kubesim import ApiError, KubeApiStandIn, StandInClient
from incidentio_operator.standins.servers import BackgroundLoop

WIDGETS = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Namespaced",
        "names": {
            "plural": "widgets",
            "singular": "widget",
            "kind": "Widget",
            "shortNames": ["wd"],
            "categories": ["toys"],
        },
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}
GADGETS = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "gadgets.example.com"},
    "spec": {
        "group": "example.com",
        "scope": "Cluster",
        "names": {"plural": "gadgets", "kind": "Gadget"},
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}},
            }
        ],
    },
}
W = "example.com/v1"


@dataclass(frozen=True)
class Problem:
    field: str
    message: str


class SizeValidator:
    """A tiny schema: prunes `spec.junk`, defaults `spec.color`, refuses `spec.size` above 10."""

    def prune(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        spec = {k: v for k, v in (obj.get("spec") or {}).items() if k != "junk"}
        return {**obj, "spec": spec}

    def apply_defaults(self, obj: Mapping[str, Any]) -> dict[str, Any]:
        return {**obj, "spec": {"color": "blue", **(obj.get("spec") or {})}}

    def validate(self, obj: Mapping[str, Any], old: Mapping[str, Any] | None = None) -> list[Problem]:
        size = obj.get("spec", {}).get("size", 0)
        if size > 10:
            return [
                Problem("spec.size", f"Invalid value: {size}: spec.size in body should be less than or equal to 10")
            ]
        return []


def size_validator(crd: Mapping[str, Any]) -> SizeValidator:
    return SizeValidator()


@pytest.fixture
def api(loop: BackgroundLoop) -> Iterator[KubeApiStandIn]:
    stand_in = KubeApiStandIn(crds=[WIDGETS, GADGETS], validator_factory=size_validator)
    loop.run(stand_in.start())
    stand_in.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    yield stand_in
    loop.run(stand_in.stop())


def widget(name: str = "w1", **spec: Any) -> dict[str, Any]:
    return {"apiVersion": W, "kind": "Widget", "metadata": {"name": name, "namespace": "default"}, "spec": spec}


def status_of(exc: pytest.ExceptionInfo[ApiError]) -> tuple[int, str]:
    return exc.value.status, exc.value.reason


# Discovery -------------------------------------------------------------------------------------


def test_discovery_lists_builtins_crd_kinds_and_status_subresources(api: KubeApiStandIn) -> None:
    http = httpx.Client(base_url=api.url)
    assert http.get("/version").json()["major"] == "1"
    assert http.get("/api").json()["versions"] == ["v1"]
    core = {r["name"]: r for r in http.get("/api/v1").json()["resources"]}
    assert core["namespaces"]["namespaced"] is False and core["namespaces"]["kind"] == "Namespace"
    assert core["secrets"]["namespaced"] is True and "watch" in core["secrets"]["verbs"]
    assert {"events", "configmaps", "namespaces/status"} <= set(core)
    assert "secrets/status" not in core
    groups = {g["name"]: g for g in http.get("/apis").json()["groups"]}
    assert {"apiextensions.k8s.io", "example.com", "coordination.k8s.io"} <= set(groups)
    assert groups["example.com"]["preferredVersion"]["version"] == "v1"
    assert http.get("/apis/example.com").json()["kind"] == "APIGroup"
    custom = {r["name"]: r for r in http.get("/apis/example.com/v1").json()["resources"]}
    assert custom["widgets"]["shortNames"] == ["wd"]
    assert custom["widgets"]["categories"] == ["toys"]
    assert custom["widgets"]["singularName"] == "widget"
    assert custom["widgets/status"]["verbs"] == ["get", "patch", "update"]
    assert custom["gadgets"]["namespaced"] is False and custom["gadgets"]["singularName"] == "gadget"
    assert "gadgets/status" not in custom
    assert http.get("/apis/nope.example.com/v1").status_code == 404
    http.close()


def test_creating_and_deleting_a_crd_registers_and_unregisters_its_kind(client: StandInClient) -> None:
    crd = {
        **GADGETS,
        "metadata": {"name": "sprockets.example.com"},
        "spec": {**GADGETS["spec"], "names": {"plural": "sprockets", "kind": "Sprocket"}},  # type: ignore[dict-item]
    }
    created = client.create(crd)
    conditions = {c["type"]: c["status"] for c in created["status"]["conditions"]}
    assert conditions["Established"] == "True"
    assert created["status"]["acceptedNames"]["kind"] == "Sprocket"
    client.create({"apiVersion": W, "kind": "Sprocket", "metadata": {"name": "s1"}})
    assert [s["metadata"]["name"] for s in client.list(W, "sprockets")] == ["s1"]
    client.delete("apiextensions.k8s.io/v1", "customresourcedefinitions", None, "sprockets.example.com")
    # The CRD finalizer deletes the instances first, then the CRD goes (see test_kubesim_crds.py).
    deadline = time.monotonic() + 20
    while client.get("apiextensions.k8s.io/v1", "crd", None, "sprockets.example.com") and time.monotonic() < deadline:
        time.sleep(0.02)
    with pytest.raises(ApiError) as exc:
        client.list(W, "sprockets")
    assert exc.value.status == 404


def test_reapplying_an_unchanged_crd_is_a_no_op(client: StandInClient) -> None:
    before = client.get("apiextensions.k8s.io/v1", "crd", None, "widgets.example.com")
    after = client.apply(WIDGETS)
    assert before is not None and after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]


def test_a_crd_must_be_named_plural_dot_group(client: StandInClient) -> None:
    with pytest.raises(ApiError) as exc:
        client.create({**GADGETS, "metadata": {"name": "wrong.example.com"}})
    assert status_of(exc) == (422, "Invalid")


# CRUD ------------------------------------------------------------------------------------------


def test_create_sets_server_fields_and_refuses_duplicates(client: StandInClient) -> None:
    created = client.create(widget(size=1))
    meta = created["metadata"]
    assert meta["uid"] and meta["creationTimestamp"].endswith("Z")
    assert meta["generation"] == 1 and int(meta["resourceVersion"]) > 0
    assert created["spec"] == {"size": 1, "color": "blue"}
    with pytest.raises(ApiError) as exc:
        client.create(widget(size=1))
    assert status_of(exc) == (409, "AlreadyExists")
    assert exc.value.message == 'widgets.example.com "w1" already exists'


def test_generate_name_makes_a_unique_name(client: StandInClient) -> None:
    body = {"apiVersion": W, "kind": "Widget", "metadata": {"generateName": "w-", "namespace": "default"}}
    names = {client.create(body)["metadata"]["name"] for _ in range(3)}
    assert len(names) == 3 and all(n.startswith("w-") and len(n) == 7 for n in names)


def test_create_in_a_missing_namespace_is_not_found(client: StandInClient) -> None:
    with pytest.raises(ApiError) as exc:
        client.create({**widget(), "metadata": {"name": "w1", "namespace": "ghost"}})
    assert status_of(exc) == (404, "NotFound")
    assert exc.value.message == 'namespaces "ghost" not found'


def test_get_list_and_delete(client: StandInClient) -> None:
    client.create(widget("a"))
    client.create(widget("b"))
    assert client.get(W, "Widget", "default", "a")["metadata"]["name"] == "a"  # type: ignore[index]
    assert client.get(W, "wd", "default", "missing") is None
    assert [w["metadata"]["name"] for w in client.list(W, "widgets", "default")] == ["a", "b"]
    client.delete(W, "widgets", "default", "a")
    assert client.get(W, "widgets", "default", "a") is None
    with pytest.raises(ApiError) as exc:
        client.delete(W, "widgets", "default", "a")
    assert status_of(exc) == (404, "NotFound")


def test_json_patch_with_a_failed_test_is_refused(api: KubeApiStandIn, client: StandInClient) -> None:
    created = client.create(widget(size=1))
    url = f"{api.url}/apis/example.com/v1/namespaces/default/widgets/w1"
    ops = [
        {"op": "test", "path": "/metadata/resourceVersion", "value": "0"},
        {"op": "replace", "path": "/spec/size", "value": 2},
    ]
    refused = httpx.patch(url, json=ops, headers={"Content-Type": "application/json-patch+json"})
    assert refused.status_code == 422
    ops[0]["value"] = created["metadata"]["resourceVersion"]
    applied = httpx.patch(url, json=ops, headers={"Content-Type": "application/json-patch+json"})
    assert applied.status_code == 200 and applied.json()["spec"]["size"] == 2


def test_strategic_merge_patch_is_refused_for_custom_resources_only(api: KubeApiStandIn, client: StandInClient) -> None:
    client.create(widget())
    client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "1"}})
    headers = {"Content-Type": "application/strategic-merge-patch+json"}
    custom = httpx.patch(f"{api.url}/apis/example.com/v1/namespaces/default/widgets/w1", json={}, headers=headers)
    assert custom.status_code == 415 and custom.json()["reason"] == "UnsupportedMediaType"
    builtin = httpx.patch(
        f"{api.url}/api/v1/namespaces/default/configmaps/c", json={"data": {"b": "2"}}, headers=headers
    )
    assert builtin.status_code == 200 and builtin.json()["data"] == {"a": "1", "b": "2"}


def test_unknown_paths_and_wrong_methods_answer_with_status_objects(api: KubeApiStandIn) -> None:
    missing = httpx.get(f"{api.url}/apis/example.com/v1/namespaces/default/nothings")
    assert missing.status_code == 404 and missing.json()["kind"] == "Status"
    wrong = httpx.post(f"{api.url}/apis/example.com/v1/namespaces/default/widgets/w1", json={})
    assert wrong.status_code == 405 and wrong.json()["reason"] == "MethodNotAllowed"


# Generation and the status subresource ---------------------------------------------------------------


def test_generation_moves_on_spec_changes_only(client: StandInClient) -> None:
    client.create(widget(size=1))
    assert client.patch(W, "widgets", "default", "w1", {"spec": {"size": 2}})["metadata"]["generation"] == 2
    labelled = client.patch(W, "widgets", "default", "w1", {"metadata": {"labels": {"a": "b"}}})
    assert labelled["metadata"]["generation"] == 2
    status = client.patch_status(W, "widgets", "default", "w1", {"status": {"phase": "Ready"}})
    assert status["metadata"]["generation"] == 2 and status["status"] == {"phase": "Ready"}


def test_generation_counts_status_changes_without_a_status_subresource(client: StandInClient) -> None:
    client.create({"apiVersion": W, "kind": "Gadget", "metadata": {"name": "g"}, "spec": {"a": 1}})
    patched = client.patch(W, "gadgets", None, "g", {"status": {"seen": True}})
    assert patched["status"] == {"seen": True} and patched["metadata"]["generation"] == 2
    with pytest.raises(ApiError) as exc:
        client.patch_status(W, "gadgets", None, "g", {"status": {"seen": False}})
    assert exc.value.status == 404


def test_a_no_op_write_keeps_the_resource_version(client: StandInClient) -> None:
    created = client.create(widget(size=1))
    again = client.patch(W, "widgets", "default", "w1", {"spec": {"size": 1}})
    assert again["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]


def test_main_resource_writes_ignore_status_and_status_writes_ignore_the_rest(client: StandInClient) -> None:
    created = client.create({**widget(size=1), "status": {"phase": "Forged"}})
    assert "status" not in created
    client.patch_status(W, "widgets", "default", "w1", {"status": {"phase": "Ready"}})
    main = client.patch(W, "widgets", "default", "w1", {"spec": {"size": 3}, "status": {"phase": "Hacked"}})
    assert main["status"] == {"phase": "Ready"} and main["spec"]["size"] == 3
    sub = client.patch_status(
        W,
        "widgets",
        "default",
        "w1",
        {"spec": {"size": 9}, "metadata": {"labels": {"x": "y"}}, "status": {"phase": "Done"}},
    )
    assert sub["spec"]["size"] == 3 and "labels" not in sub["metadata"] and sub["status"] == {"phase": "Done"}
    full = client.update({**sub, "status": {"phase": "Replaced"}}, subresource="status")
    assert full["status"] == {"phase": "Replaced"}


def test_get_on_status_returns_the_whole_object(api: KubeApiStandIn, client: StandInClient) -> None:
    client.create(widget(size=4))
    body = httpx.get(f"{api.url}/apis/example.com/v1/namespaces/default/widgets/w1/status").json()
    assert body["spec"]["size"] == 4 and body["kind"] == "Widget"


# Optimistic concurrency ----------------------------------------------------------------------------------


def test_put_with_a_stale_resource_version_conflicts(client: StandInClient) -> None:
    created = client.create(widget(size=1))
    client.patch(W, "widgets", "default", "w1", {"spec": {"size": 2}})
    with pytest.raises(ApiError) as exc:
        client.update({**created, "spec": {"size": 5}})
    assert status_of(exc) == (409, "Conflict")
    assert "the object has been modified" in exc.value.message
    with pytest.raises(ApiError) as missing:
        client.update({**created, "metadata": {**created["metadata"], "resourceVersion": ""}})
    assert status_of(missing) == (422, "Invalid")


def test_resource_version_in_a_merge_patch_is_a_precondition(client: StandInClient) -> None:
    created = client.create(widget(size=1))
    rv = created["metadata"]["resourceVersion"]
    client.patch(W, "widgets", "default", "w1", {"spec": {"size": 2}})
    for write in (client.patch, client.patch_status):
        with pytest.raises(ApiError) as exc:
            write(W, "widgets", "default", "w1", {"metadata": {"resourceVersion": rv}, "status": {"a": 1}})
        assert status_of(exc) == (409, "Conflict")
    current = client.get(W, "widgets", "default", "w1")["metadata"]["resourceVersion"]  # type: ignore[index]
    ok = client.patch(W, "widgets", "default", "w1", {"metadata": {"resourceVersion": current}, "spec": {"size": 3}})
    assert int(ok["metadata"]["resourceVersion"]) > int(current)


def test_resource_versions_are_one_global_counter(client: StandInClient, api: KubeApiStandIn) -> None:
    a = client.create(widget("a"))
    b = client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}})
    assert int(b["metadata"]["resourceVersion"]) == int(a["metadata"]["resourceVersion"]) + 1
    listing = httpx.get(f"{api.url}/api/v1/namespaces/default/configmaps").json()
    assert listing["metadata"]["resourceVersion"] == b["metadata"]["resourceVersion"] == api.resource_version


# Finalizers --------------------------------------------------------------------------------------------------------


def test_finalizers_hold_deletion_until_removed(client: StandInClient) -> None:
    client.create({**widget(size=1), "metadata": {"name": "w1", "finalizers": ["example.com/cleanup"]}})
    terminating = client.delete(W, "widgets", "default", "w1")
    meta = terminating["metadata"]
    assert meta["deletionTimestamp"] and meta["deletionGracePeriodSeconds"] == 0 and meta["generation"] == 2
    again = client.delete(W, "widgets", "default", "w1")
    assert again["metadata"]["resourceVersion"] == meta["resourceVersion"]
    with pytest.raises(ApiError) as exc:
        client.patch(W, "widgets", "default", "w1", {"metadata": {"finalizers": ["example.com/cleanup", "new"]}})
    assert status_of(exc) == (422, "Invalid")
    assert client.get(W, "widgets", "default", "w1") is not None
    client.patch(W, "widgets", "default", "w1", {"metadata": {"finalizers": None}})
    assert client.get(W, "widgets", "default", "w1") is None


# Selectors and pagination ----------------------------------------------------------------------------------


def test_label_and_field_selectors(client: StandInClient) -> None:
    for name, labels in (("a", {"tier": "gold", "team": "x"}), ("b", {"tier": "silver"}), ("c", {})):
        client.create({**widget(name), "metadata": {"name": name, "labels": labels}})

    def names(**selectors: str) -> list[str]:
        return [w["metadata"]["name"] for w in client.list(W, "widgets", "default", **selectors)]

    assert names(label_selector="tier=gold") == ["a"]
    assert names(label_selector="tier!=gold") == ["b", "c"]
    assert names(label_selector="tier in (gold,silver)") == ["a", "b"]
    assert names(label_selector="tier notin (gold)") == ["b", "c"]
    assert names(label_selector="tier") == ["a", "b"]
    assert names(label_selector="!tier") == ["c"]
    assert names(label_selector="tier,team=x") == ["a"]
    assert names(field_selector="metadata.name=b") == ["b"]
    assert names(field_selector="metadata.namespace=default,metadata.name!=b") == ["a", "c"]
    with pytest.raises(ApiError) as exc:
        names(field_selector="spec.size=1")
    assert status_of(exc) == (400, "BadRequest")


def test_pagination_with_limit_and_continue(api: KubeApiStandIn) -> None:
    for i in range(7):
        api.put_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}", "namespace": "default"}})
    url = f"{api.url}/api/v1/namespaces/default/configmaps"
    first = httpx.get(url, params={"limit": "3"}).json()
    assert [i["metadata"]["name"] for i in first["items"]] == ["c0", "c1", "c2"]
    assert first["metadata"]["remainingItemCount"] == 4
    second = httpx.get(url, params={"limit": "3", "continue": first["metadata"]["continue"]}).json()
    third = httpx.get(url, params={"limit": "3", "continue": second["metadata"]["continue"]}).json()
    assert [i["metadata"]["name"] for i in second["items"] + third["items"]] == ["c3", "c4", "c5", "c6"]
    assert "continue" not in third["metadata"]
    assert third["metadata"]["resourceVersion"] == first["metadata"]["resourceVersion"]
    with StandInClient(api.url) as client:
        assert len(client.list("v1", "configmaps", "default", limit=2)) == 7


# Kind-specific behaviour ----------------------------------------------------------------------------------


def test_secret_string_data_is_merged_into_data(client: StandInClient) -> None:
    secret = client.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "s"},
            "data": {"a": base64.b64encode(b"1").decode()},
            "stringData": {"b": "two"},
        }
    )
    assert "stringData" not in secret and secret["type"] == "Opaque"
    assert {k: base64.b64decode(v) for k, v in secret["data"].items()} == {"a": b"1", "b": b"two"}
    patched = client.patch("v1", "secrets", "default", "s", {"stringData": {"a": "one"}})
    assert base64.b64decode(patched["data"]["a"]) == b"one"


def test_events_can_be_posted_with_generate_name(client: StandInClient) -> None:
    client.create(
        {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": "kopf-event-", "namespace": "default"},
            "reason": "Logging",
            "message": "hi",
            "involvedObject": {"kind": "Widget", "name": "w1"},
        }
    )
    events = client.events("default")
    assert [e["reason"] for e in events] == ["Logging"]


def test_schema_problems_become_422_invalid_after_pruning_and_defaulting(client: StandInClient) -> None:
    created = client.create(widget(size=2, junk="x"))
    assert created["spec"] == {"size": 2, "color": "blue"}
    with pytest.raises(ApiError) as exc:
        client.patch(W, "widgets", "default", "w1", {"spec": {"size": 11}})
    assert status_of(exc) == (422, "Invalid")
    assert exc.value.message == (
        'Widget.example.com "w1" is invalid: spec.size: Invalid value: 11: '
        "spec.size in body should be less than or equal to 10"
    )
    assert exc.value.details["causes"] == [
        {
            "reason": "FieldValueInvalid",
            "field": "spec.size",
            "message": "Invalid value: 11: spec.size in body should be less than or equal to 10",
        }
    ]
    assert client.get(W, "widgets", "default", "w1")["spec"]["size"] == 2  # type: ignore[index]


# Faults and accounting -------------------------------------------------------------------------------------


def test_fail_next_answers_matching_requests_without_applying_them(api: KubeApiStandIn, client: StandInClient) -> None:
    client.create(widget(size=1))
    api.fail_next(2, status=409, verb="patch", resource="widgets", subresource="status")
    for _ in range(2):
        with pytest.raises(ApiError) as exc:
            client.patch_status(W, "widgets", "default", "w1", {"status": {"a": 1}})
        assert status_of(exc) == (409, "Conflict")
    client.patch(W, "widgets", "default", "w1", {"spec": {"size": 2}})
    assert "status" not in client.get(W, "widgets", "default", "w1")  # type: ignore[operator]
    assert client.patch_status(W, "widgets", "default", "w1", {"status": {"a": 1}})["status"] == {"a": 1}
    api.fail_next(1, status=500)
    with pytest.raises(ApiError) as failed:
        client.get(W, "widgets", "default", "w1")
    assert status_of(failed) == (500, "InternalError")


def test_delay_next_holds_a_request(api: KubeApiStandIn, client: StandInClient) -> None:
    client.create(widget())
    api.delay_next(1, 0.3, verb="get", resource="widgets")
    started = time.monotonic()
    client.get(W, "widgets", "default", "w1")
    assert time.monotonic() - started >= 0.3


def test_requests_are_recorded_and_counted(api: KubeApiStandIn, client: StandInClient) -> None:
    api.clear_requests()
    client.create(widget())
    client.patch(W, "widgets", "default", "w1", {"spec": {"a": 1}})
    client.patch_status(W, "widgets", "default", "w1", {"status": {"a": 1}})
    client.get(W, "widgets", "default", "nope")
    assert api.count(verb="patch", resource="widgets") == 2
    assert api.count(verb="patch", resource="widgets", subresource="status") == 1
    assert api.count(verb="patch", resource="widgets", subresource="") == 1
    assert [c.name for c in api.requests if c.verb == "create"] == ["w1"]
    missing = [c for c in api.requests if c.verb == "get" and c.resource == "widgets"]
    assert [(c.status, c.namespace, c.name) for c in missing] == [(404, "default", "nope")]


def test_put_object_from_another_thread_while_serving(api: KubeApiStandIn, client: StandInClient) -> None:
    threads = [
        threading.Thread(target=api.put_object, args=({**widget(f"t{i}"), "status": {"n": i}},)) for i in range(20)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stored = client.list(W, "widgets", "default")
    assert len(stored) == 20 and all(w["status"]["n"] == int(w["metadata"]["name"][1:]) for w in stored)
    versions = sorted(int(w["metadata"]["resourceVersion"]) for w in stored)
    assert len(set(versions)) == 20


def test_a_restored_object_skips_admission_but_keeps_its_uid_and_is_listed(
    api: KubeApiStandIn, client: StandInClient
) -> None:
    # A write with spec.size 11 is refused; etcd restore of what was once admitted is not re-validated.
    with pytest.raises(ApiError):
        api.put_object(widget("refused", size=11))
    api.restore_object(
        {
            **widget("restored", size=11),
            "metadata": {**widget()["metadata"], "name": "restored", "uid": "u-1"},
            "status": {"n": 1},
        }
    )
    (stored,) = client.list(W, "widgets", "default")
    assert (stored["metadata"]["name"], stored["metadata"]["uid"], stored["status"]) == ("restored", "u-1", {"n": 1})
    assert stored["metadata"]["resourceVersion"] and stored["metadata"]["generation"] == 1
    with pytest.raises(ApiError) as exc:
        api.restore_object(widget("restored"))
    assert status_of(exc)[0] == 409


def test_kubeconfig_points_at_the_stand_in(api: KubeApiStandIn, tmp_path: Path) -> None:
    import yaml

    config = yaml.safe_load(api.write_kubeconfig(tmp_path / "kubeconfig", namespace="ns1").read_text())
    assert config["clusters"][0]["cluster"]["server"] == api.url
    assert config["contexts"][0]["context"]["namespace"] == "ns1"
