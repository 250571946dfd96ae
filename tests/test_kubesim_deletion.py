"""Replace and delete in the API stand-in: what a PUT keeps, what a DELETE answers, what DELETED carries.

- PUT replaces the object: metadata.finalizers left out of the body are removed, and with the status
  subresource enabled "PUT requests to the /status subresource ... and PUT/POST/PATCH requests to the custom
  resource ignore changes to the status stanza"
  (https://kubernetes.io/docs/tasks/extend-kubernetes/custom-resources/custom-resource-definitions/#status-subresource).
- An object without finalizers is removed at once (https://kubernetes.io/docs/concepts/overview/working-with-objects/finalizers/);
  the generic registry answers with a Status of success (apiserver registry `finalizeDelete`).
- The DELETED watch event carries the object's last stored state at the deletion's revision
  (apiserver/pkg/storage/etcd3/watcher.go).
"""

from __future__ import annotations

from typing import Any

from incidentio_operator.standins.kubesim import KubeApiStandIn, StandInClient

from .test_kubesim import W, widget
from .test_kubesim_clients import BOUND
from .test_kubesim_watch import summary

DELIVERIES = {"deliveries": [{"destination": "pager", "incident": "INC-1", "state": "open"}]}


def test_a_replace_without_finalizers_removes_them_and_keeps_the_stored_status(client: StandInClient) -> None:
    client.create({**widget("a", size=1), "metadata": {"name": "a", "finalizers": ["example.com/close-incidents"]}})
    stored = client.patch_status(W, "widgets", "default", "a", {"status": DELIVERIES})
    replacement: dict[str, Any] = {
        "apiVersion": W,
        "kind": "Widget",
        "metadata": {"name": "a", "resourceVersion": stored["metadata"]["resourceVersion"]},
        "spec": {"size": 2},
        "status": {"deliveries": []},
    }
    replaced = client.update(replacement)
    assert "finalizers" not in replaced["metadata"]
    assert replaced["status"] == DELIVERIES, "status in a main-resource PUT is ignored"
    assert replaced["spec"]["size"] == 2 and replaced["metadata"]["generation"] == 2


def test_a_delete_right_after_such_a_replace_removes_at_once_and_deleted_carries_the_last_status(
    api: KubeApiStandIn, client: StandInClient
) -> None:
    client.create({**widget("a"), "metadata": {"name": "a", "finalizers": ["example.com/close-incidents"]}})
    stored = client.patch_status(W, "widgets", "default", "a", {"status": DELIVERIES})
    events = client.watch(W, "widgets", "default", resource_version=api.resource_version, timeout_seconds=int(BOUND))
    # As `kubectl replace` or a GitOps replace sync sends it: the object as written, without finalizers.
    metadata = {k: v for k, v in stored["metadata"].items() if k != "finalizers"}
    replaced = client.update({**stored, "metadata": metadata})
    answered = client.delete(W, "widgets", "default", "a")
    assert answered == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Success",
        "details": {"name": "a", "group": "example.com", "kind": "widgets", "uid": stored["metadata"]["uid"]},
    }
    assert client.get(W, "widgets", "default", "a") is None
    modified, deleted = next(events), next(events)
    assert (summary(modified), summary(deleted)) == (("MODIFIED", "a"), ("DELETED", "a"))
    last = deleted["object"]
    assert last["status"] == DELIVERIES and "finalizers" not in last["metadata"]
    assert "deletionTimestamp" not in last["metadata"], "removed at once, never marked"
    assert int(last["metadata"]["resourceVersion"]) > int(replaced["metadata"]["resourceVersion"])
    events.close()


def test_deleting_a_secret_answers_with_a_status_and_a_marked_object_answers_with_itself(client: StandInClient) -> None:
    secret = client.create({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "key"}, "data": {}})
    answered = client.delete("v1", "secrets", "default", "key")
    assert answered["status"] == "Success"
    assert answered["details"] == {"name": "key", "kind": "secrets", "uid": secret["metadata"]["uid"]}
    client.create({**widget("held"), "metadata": {"name": "held", "finalizers": ["x/y"]}})
    marked = client.delete(W, "widgets", "default", "held")
    assert marked["kind"] == "Widget" and marked["metadata"]["deletionTimestamp"]
