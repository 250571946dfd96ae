"""Namespace teardown in the API stand-in, as the real API server and namespace controller do it.

- DELETE marks the namespace (deletionTimestamp, status.phase Terminating) and answers with it
  (kubernetes pkg/registry/core/namespace/storage/storage.go).
- The NamespaceLifecycle admission plugin refuses creates into it with 403 Forbidden
  (https://kubernetes.io/docs/reference/access-authn-authz/admission-controllers/#namespacelifecycle).
- The namespace controller deletes everything in it honouring finalizers, reports what remains in
  status.conditions, and removes the namespace last
  (https://kubernetes.io/docs/tasks/administer-cluster/namespaces/#deleting-a-namespace;
  pkg/controller/namespace/deletion).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from incidentio_operator.standins.kubesim import ApiError, KubeApiStandIn, StandInClient
from incidentio_operator.standins.servers import BackgroundLoop

from .test_kubesim import WIDGETS, W
from .test_kubesim_clients import BOUND, eventually
from .test_kubesim_watch import summary

HOLD = "example.com/hold"
TERMINATING = "unable to create new content in namespace doomed because it is being terminated"


@pytest.fixture
def api(loop: BackgroundLoop) -> Iterator[KubeApiStandIn]:
    stand_in = KubeApiStandIn(crds=[WIDGETS], validator_factory=None)
    loop.run(stand_in.start())
    yield stand_in
    loop.run(stand_in.stop())


@pytest.fixture
def client(api: KubeApiStandIn) -> Iterator[StandInClient]:
    with StandInClient(api.url, namespace="doomed") as c:
        c.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "doomed"}})
        yield c


def held_widget(name: str = "held") -> dict[str, Any]:
    return {"apiVersion": W, "kind": "Widget", "metadata": {"name": name, "finalizers": [HOLD]}, "spec": {}}


def configmap(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}}


def conditions(client: StandInClient) -> dict[str, tuple[str, str, str]]:
    namespace = client.get("v1", "namespaces", None, "doomed") or {}
    found = (namespace.get("status") or {}).get("conditions") or []
    return {c["type"]: (c["status"], c["reason"], c["message"]) for c in found}


def test_delete_marks_the_namespace_terminating_and_answers_with_it(api: KubeApiStandIn, client: StandInClient) -> None:
    client.create(held_widget())
    events = client.watch("v1", "namespaces", resource_version=api.resource_version, timeout_seconds=int(BOUND))
    answered = client.delete("v1", "namespaces", None, "doomed")
    assert answered["kind"] == "Namespace" and answered["metadata"]["deletionTimestamp"]
    assert answered["status"]["phase"] == "Terminating" and answered["spec"]["finalizers"] == ["kubernetes"]
    marked = next(events)
    assert summary(marked) == ("MODIFIED", "doomed")
    assert marked["object"]["status"] == {"phase": "Terminating"}, "the controller's conditions come later"
    assert "deletionGracePeriodSeconds" not in marked["object"]["metadata"]
    events.close()


def test_creates_into_a_terminating_namespace_are_forbidden_as_the_lifecycle_plugin_answers(
    client: StandInClient,
) -> None:
    client.create(held_widget())
    client.delete("v1", "namespaces", None, "doomed")
    cause = {
        "reason": "NamespaceTerminating",
        "message": "namespace doomed is being terminated",
        "field": "metadata.namespace",
    }
    with pytest.raises(ApiError) as refused:
        client.create(configmap("late"))
    assert (refused.value.status, refused.value.reason) == (403, "Forbidden")
    assert refused.value.message == f'configmaps "late" is forbidden: {TERMINATING}'
    assert refused.value.details == {"kind": "configmaps", "name": "late", "causes": [cause]}
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": "kopf-event-"},
        "involvedObject": {"kind": "Widget", "name": "held", "namespace": "doomed"},
        "reason": "Logging",
        "message": "too late",
    }
    with pytest.raises(ApiError) as refused:
        client.create(event)
    # Before a generated name exists, the plugin names the object by its generateName.
    assert refused.value.message == f'events "kopf-event-" is forbidden: {TERMINATING}'
    with pytest.raises(ApiError) as refused:
        client.create({**held_widget("late"), "metadata": {"name": "late"}})
    assert refused.value.message == f'widgets.example.com "late" is forbidden: {TERMINATING}'
    assert refused.value.details["group"] == "example.com"


def test_the_controller_deletes_every_kind_honours_finalizers_and_removes_the_namespace_last(
    api: KubeApiStandIn, client: StandInClient
) -> None:
    client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "key"}, "stringData": {"k": "v"}})
    client.create(configmap("settings"))
    client.create({"apiVersion": "v1", "kind": "Event", "metadata": {"name": "e1"}, "reason": "Made", "message": "m"})
    client.create({"apiVersion": W, "kind": "Widget", "metadata": {"name": "free"}, "spec": {}})
    client.create(held_widget())
    since = api.resource_version
    namespaces = client.watch("v1", "namespaces", resource_version=since, timeout_seconds=int(BOUND))
    widgets = client.watch(W, "widgets", "doomed", resource_version=since, timeout_seconds=int(BOUND))
    client.delete("v1", "namespaces", None, "doomed")

    for plural in ("secrets", "configmaps", "events"):
        eventually(lambda plural=plural: client.list("v1", plural, "doomed") == [], f"the {plural} to go")
    eventually(lambda: client.get(W, "widgets", "doomed", "free") is None, "the widget without finalizers to go")
    held = client.get(W, "widgets", "doomed", "held")
    assert held is not None and held["metadata"]["deletionTimestamp"] and held["metadata"]["finalizers"] == [HOLD]
    eventually(lambda: "NamespaceContentRemaining" in conditions(client), "the controller's conditions")
    assert conditions(client) == {
        "NamespaceDeletionDiscoveryFailure": ("False", "ResourcesDiscovered", "All resources successfully discovered"),
        "NamespaceDeletionGroupVersionParsingFailure": (
            "False",
            "ParsedGroupVersions",
            "All legacy kube types successfully parsed",
        ),
        "NamespaceDeletionContentFailure": (
            "False",
            "ContentDeleted",
            "All content successfully deleted, may be waiting on finalization",
        ),
        "NamespaceContentRemaining": (
            "True",
            "SomeResourcesRemain",
            "Some resources are remaining: widgets.example.com has 1 resource instances",
        ),
        "NamespaceFinalizersRemaining": (
            "True",
            "SomeFinalizersRemain",
            f"Some content in the namespace has finalizers remaining: {HOLD} in 1 resource instances",
        ),
    }
    assert client.get("v1", "namespaces", None, "doomed") is not None, "the namespace waits for its content"

    # Updates into a terminating namespace stay allowed: status writes, labels, and releasing the finalizer.
    client.patch_status(W, "widgets", "doomed", "held", {"status": {"phase": "Closing"}})
    client.patch(W, "widgets", "doomed", "held", {"metadata": {"labels": {"closing": "yes"}}})
    client.patch(W, "widgets", "doomed", "held", {"metadata": {"finalizers": None}})
    eventually(lambda: client.get("v1", "namespaces", None, "doomed") is None, "the namespace to go")

    widget_events = [summary(next(widgets)) for _ in range(5)]
    assert widget_events[:2] == [("DELETED", "free"), ("MODIFIED", "held")]
    assert widget_events[2:] == [("MODIFIED", "held"), ("MODIFIED", "held"), ("DELETED", "held")]
    namespace_events = []
    while not namespace_events or namespace_events[-1]["type"] != "DELETED":
        namespace_events.append(next(namespaces))
    last = namespace_events[-1]["object"]
    assert last["status"]["phase"] == "Terminating"
    assert {c["type"]: c["status"] for c in last["status"]["conditions"]}["NamespaceContentRemaining"] == "False"
    assert int(last["metadata"]["resourceVersion"]) == int(api.resource_version), "the namespace goes last"
    namespaces.close()
    widgets.close()


def test_deleting_a_terminating_namespace_again_is_a_conflict(client: StandInClient) -> None:
    client.create(held_widget())
    client.delete("v1", "namespaces", None, "doomed")
    with pytest.raises(ApiError) as again:
        client.delete("v1", "namespaces", None, "doomed")
    assert (again.value.status, again.value.reason) == (409, "Conflict")
    assert again.value.message == (
        'Operation cannot be fulfilled on namespaces "doomed": The system is ensuring all content is removed from '
        "this namespace.  Upon completion, this namespace will automatically be purged by the system."
    )


def test_an_empty_namespace_goes_at_once_and_the_immortal_ones_stay(api: KubeApiStandIn, client: StandInClient) -> None:
    client.delete("v1", "namespaces", None, "doomed")
    eventually(lambda: client.get("v1", "namespaces", None, "doomed") is None, "the empty namespace to go")
    api.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    with pytest.raises(ApiError) as refused:
        client.delete("v1", "namespaces", None, "default")
    assert refused.value.status == 403
    assert refused.value.message == 'namespaces "default" is forbidden: this namespace may not be deleted'


def test_the_main_resource_cannot_change_spec_finalizers(client: StandInClient) -> None:
    patched = client.patch(
        "v1", "namespaces", None, "doomed", {"spec": {"finalizers": []}, "metadata": {"labels": {"a": "b"}}}
    )
    assert patched["spec"]["finalizers"] == ["kubernetes"] and patched["metadata"]["labels"]["a"] == "b"
