"""Deleting a CRD in the API stand-in, as the apiextensions server does it.

"When you delete a CustomResourceDefinition, the server will uninstall the RESTful API endpoint and delete
all custom objects stored in it"
(https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#delete-a-customresourcedefinition):
the CRD registry's Delete adds the `customresourcecleanup.apiextensions.k8s.io` finalizer and a Terminating
condition, creates are refused while it terminates, and the CRD finalizer deletes every instance, honouring
their finalizers, before the CRD goes (apiextensions-apiserver pkg/controller/finalizer/crd_finalizer.go).
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from incidentio_operator.standins.kubesim import ApiError, KubeApiStandIn, StandInClient

from .test_kubesim import W, widget
from .test_kubesim_clients import BOUND, eventually
from .test_kubesim_watch import summary

CRD = "apiextensions.k8s.io/v1"


def terminating(crd: dict[str, Any] | None) -> tuple[str, str, str] | None:
    found = [c for c in ((crd or {}).get("status") or {}).get("conditions") or () if c["type"] == "Terminating"]
    return (found[0]["status"], found[0]["reason"], found[0]["message"]) if found else None


def test_a_deleted_crd_deletes_its_instances_first_and_goes_last(api: KubeApiStandIn, client: StandInClient) -> None:
    client.create(widget("free"))
    client.create({**widget("held"), "metadata": {"name": "held", "finalizers": ["example.com/close"]}})
    since = api.resource_version
    widget_events: list[dict[str, Any]] = []
    stream = client.watch(W, "widgets", resource_version=since, timeout_seconds=int(BOUND))
    consumer = threading.Thread(target=lambda: widget_events.extend(stream), daemon=True)
    consumer.start()
    eventually(lambda: api.open_watches("widgets"), "the widgets' watch to open")
    crds = client.watch(CRD, "customresourcedefinitions", resource_version=since, timeout_seconds=int(BOUND))

    marked = client.delete(CRD, "customresourcedefinitions", None, "widgets.example.com")
    assert marked["metadata"]["deletionTimestamp"]
    assert marked["metadata"]["finalizers"] == ["customresourcecleanup.apiextensions.k8s.io"]
    assert terminating(marked) == (
        "True",
        "InstanceDeletionPending",
        "CustomResourceDefinition marked for deletion; CustomResource deletion will begin soon",
    )
    eventually(lambda: client.get(W, "widgets", "default", "free") is None, "the instance without finalizers to go")
    held = client.get(W, "widgets", "default", "held")
    assert held is not None and held["metadata"]["deletionTimestamp"]
    eventually(
        lambda: (
            terminating(client.get(CRD, "crd", None, "widgets.example.com"))
            == ("True", "InstanceDeletionInProgress", "CustomResource deletion is in progress")
        ),
        "the CRD to wait for its instances",
    )
    with pytest.raises(ApiError) as refused:
        client.create(widget("late"))
    assert (refused.value.status, refused.value.reason) == (405, "MethodNotAllowed")
    assert refused.value.message == "create not allowed while custom resource definition is terminating"

    client.patch_status(W, "widgets", "default", "held", {"status": {"phase": "Closing"}})
    client.patch(W, "widgets", "default", "held", {"metadata": {"finalizers": None}})
    eventually(lambda: client.get(CRD, "crd", None, "widgets.example.com") is None, "the CRD to go")
    with pytest.raises(ApiError) as gone:
        client.list(W, "widgets")
    assert gone.value.status == 404

    consumer.join(BOUND)
    assert not consumer.is_alive(), "the widgets' watch ends when the resource stops being served"
    assert [summary(e) for e in widget_events] == [
        ("DELETED", "free"),
        ("MODIFIED", "held"),
        ("MODIFIED", "held"),
        ("DELETED", "held"),
    ]
    crd_events = []
    while not crd_events or crd_events[-1]["type"] != "DELETED":
        crd_events.append(next(crds))
    assert terminating(crd_events[-1]["object"]) == ("False", "InstanceDeletionCompleted", "removed all instances")
    crds.close()
