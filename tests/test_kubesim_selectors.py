"""Narrowed lists and watches in the API stand-in, and the count of object bodies it sends.

Every resource supports the field selectors `metadata.name` and `metadata.namespace`, with `=`, `==` and
`!=`, and label selectors, on list and on watch
(https://kubernetes.io/docs/concepts/overview/working-with-objects/field-selectors/,
https://kubernetes.io/docs/concepts/overview/working-with-objects/labels/#label-selectors); an object that
starts or stops matching is ADDED or DELETED for that watch.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from incidentio_operator.standins.kubesim import ApiError, KubeApiStandIn, StandInClient
from incidentio_operator.standins.servers import BackgroundLoop

from .test_kubesim_clients import BOUND
from .test_kubesim_watch import summary

# A tenant's API key among the Helm release Secrets and other teams' credentials of the same cluster.
SECRETS = (
    ("team-a", "incident-io", {"team": "a"}),
    ("team-a", "sh.helm.release.v1.app.v1", {"owner": "helm"}),
    ("team-b", "incident-io", {"team": "b"}),
    ("team-b", "tls", {}),
)


@pytest.fixture
def api(loop: BackgroundLoop) -> Iterator[KubeApiStandIn]:
    stand_in = KubeApiStandIn(validator_factory=None)
    loop.run(stand_in.start())
    for namespace in ("team-a", "team-b"):
        stand_in.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": namespace}})
    for namespace, name, labels in SECRETS:
        stand_in.put_object(secret(namespace, name, labels))
    yield stand_in
    loop.run(stand_in.stop())


def secret(namespace: str, name: str, labels: dict[str, str], value: str = "v1") -> dict[str, Any]:
    metadata = {"name": name, "namespace": namespace, "labels": labels}
    return {"apiVersion": "v1", "kind": "Secret", "metadata": metadata, "stringData": {"apiKey": value}}


def names(objects: list[dict[str, Any]]) -> list[str]:
    return [f"{o['metadata']['namespace']}/{o['metadata']['name']}" for o in objects]


def test_lists_narrowed_by_name_namespace_and_labels(client: StandInClient) -> None:
    assert names(client.list("v1", "secrets", field_selector="metadata.name=incident-io")) == [
        "team-a/incident-io",
        "team-b/incident-io",
    ]
    assert names(client.list("v1", "secrets", "team-a", field_selector="metadata.name==incident-io")) == [
        "team-a/incident-io"
    ]
    assert names(client.list("v1", "secrets", field_selector="metadata.namespace=team-b,metadata.name!=tls")) == [
        "team-b/incident-io"
    ]
    assert names(client.list("v1", "secrets", label_selector="team in (a,b)")) == [
        "team-a/incident-io",
        "team-b/incident-io",
    ]
    with pytest.raises(ApiError) as refused:
        client.list("v1", "secrets", field_selector="data.apiKey=v1")
    assert (refused.value.status, refused.value.message) == (400, "field label not supported: data.apiKey")


def test_a_watch_narrowed_to_one_secret_sees_only_that_secret(api: KubeApiStandIn, client: StandInClient) -> None:
    events = client.watch(
        "v1",
        "secrets",
        field_selector="metadata.namespace=team-a,metadata.name=incident-io",
        resource_version=api.resource_version,
        timeout_seconds=int(BOUND),
    )
    for namespace, name, labels in SECRETS:
        client.update(secret(namespace, name, labels, value="v2"))
    client.delete("v1", "secrets", "team-b", "incident-io")
    client.delete("v1", "secrets", "team-a", "incident-io")
    seen = [next(events), next(events)]
    assert [summary(e) for e in seen] == [("MODIFIED", "incident-io"), ("DELETED", "incident-io")]
    assert {e["object"]["metadata"]["namespace"] for e in seen} == {"team-a"}
    events.close()


def test_a_label_narrowed_watch_sees_secrets_come_and_go_as_their_labels_change(
    api: KubeApiStandIn, client: StandInClient
) -> None:
    events = client.watch(
        "v1", "secrets", label_selector="team=a", resource_version=api.resource_version, timeout_seconds=int(BOUND)
    )
    client.update(secret("team-b", "tls", {"team": "a"}))
    client.update(secret("team-a", "incident-io", {"team": "retired"}))
    assert [summary(next(events)) for _ in range(2)] == [("ADDED", "tls"), ("DELETED", "incident-io")]
    events.close()


def test_the_bodies_sent_count_only_what_each_response_carried(api: KubeApiStandIn, client: StandInClient) -> None:
    api.clear_requests()
    narrowed = client.list("v1", "secrets", "team-a", field_selector="metadata.name=incident-io")
    events = client.watch(
        "v1",
        "secrets",
        "team-a",
        field_selector="metadata.name=incident-io",
        resource_version=api.resource_version,
        timeout_seconds=int(BOUND),
    )
    client.update(secret("team-b", "tls", {}, value="rotated"))
    modified = client.update(secret("team-a", "incident-io", {"team": "a"}, value="rotated"))
    assert summary(next(events)) == ("MODIFIED", "incident-io")
    events.close()
    sent = api.sent("secrets", verb="list")
    assert sent.names == frozenset({"team-a/incident-io"})
    assert sent.bytes == len(json.dumps(narrowed[0], separators=(",", ":")))
    watched = api.sent("secrets", verb="watch")
    assert (watched.objects, watched.names) == (1, frozenset({"team-a/incident-io"}))
    assert watched.bytes == len(json.dumps(modified, separators=(",", ":")))
    everything = api.sent("secrets")
    assert everything.names == frozenset({"team-a/incident-io", "team-b/tls"}), "the update answered with tls"

    api.clear_requests()
    client.list("v1", "secrets")
    unrelated = api.sent("secrets")
    assert unrelated.objects == len(SECRETS) and len(unrelated.names) == len(SECRETS)
    (call,) = [c for c in api.requests if c.resource == "secrets"]
    assert (call.sent_objects, call.sent_bytes) == (unrelated.objects, unrelated.bytes)
