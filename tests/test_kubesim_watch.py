"""Watch streams of the API stand-in: replay, bookmarks, timeouts, 410 Gone, selectors, faults and shutdown."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import httpx
import pytest

from incidentio_operator.standins.kubesim import KubeApiStandIn, StandInClient
from incidentio_operator.standins.servers import BackgroundLoop

from .test_kubesim import WIDGETS, W, widget

BOUND = 10  # seconds: every stream in these tests ends by itself at the latest after this long


def start(loop: BackgroundLoop, **options: Any) -> KubeApiStandIn:
    stand_in = KubeApiStandIn(crds=[WIDGETS], validator_factory=None, **options)
    loop.run(stand_in.start())
    stand_in.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    return stand_in


def summary(event: dict[str, Any]) -> tuple[str, str]:
    return event["type"], event["object"]["metadata"].get("name", "")


def test_watch_without_resource_version_starts_with_the_current_state(client: StandInClient) -> None:
    client.create(widget("a"))
    client.create(widget("b"))
    events = client.watch(W, "widgets", "default", timeout_seconds=BOUND)
    assert [summary(next(events)) for _ in range(2)] == [("ADDED", "a"), ("ADDED", "b")]
    client.create(widget("c"))
    assert summary(next(events)) == ("ADDED", "c")
    events.close()


def test_watch_replays_the_changes_after_a_resource_version(client: StandInClient) -> None:
    client.create(widget("a"))
    since = client.create(widget("b"))["metadata"]["resourceVersion"]
    client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "unrelated"}})
    client.patch(W, "widgets", "default", "a", {"spec": {"size": 2}})
    client.delete(W, "widgets", "default", "b")
    events = client.watch(W, "widgets", "default", resource_version=since, timeout_seconds=BOUND)
    replayed = [next(events) for _ in range(2)]
    assert [summary(e) for e in replayed] == [("MODIFIED", "a"), ("DELETED", "b")]
    assert replayed[0]["object"]["spec"] == {"size": 2}
    assert int(replayed[1]["object"]["metadata"]["resourceVersion"]) > int(
        replayed[0]["object"]["metadata"]["resourceVersion"]
    )
    client.create(widget("c"))
    assert summary(next(events)) == ("ADDED", "c")
    events.close()


def test_a_resource_version_older_than_the_history_is_an_expired_error_event(loop: BackgroundLoop) -> None:
    """The watch cache refuses to resume before its oldest event: HTTP 200, one ERROR event with a 410 Expired
    Status "too old resource version: X (Y)", then the stream ends (apiserver/pkg/storage/cacher/watch_cache.go,
    https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes)."""
    api = start(loop, history_size=3)
    try:
        with StandInClient(api.url) as client:
            old = client.create(widget("a"))["metadata"]["resourceVersion"]
            for size in range(5):
                client.patch(W, "widgets", "default", "a", {"spec": {"size": size}})
            url = f"{api.url}/apis/example.com/v1/namespaces/default/widgets"
            params = {"watch": "true", "resourceVersion": old, "timeoutSeconds": str(BOUND)}
            with httpx.stream("GET", url, params=params) as response:
                assert response.status_code == 200
                lines = [json.loads(line) for line in response.iter_lines() if line.strip()]
            # Three events stay in the history; the oldest one can be resumed from is the one before them.
            oldest = int(api.resource_version) - 3
            assert lines == [
                {
                    "type": "ERROR",
                    "object": {
                        "kind": "Status",
                        "apiVersion": "v1",
                        "metadata": {},
                        "status": "Failure",
                        "message": f"too old resource version: {old} ({oldest})",
                        "reason": "Expired",
                        "code": 410,
                    },
                }
            ]
            fresh = client.watch(W, "widgets", "default", resource_version=str(oldest), timeout_seconds=BOUND)
            assert [summary(next(fresh)) for _ in range(3)] == [("MODIFIED", "a")] * 3
            client.create(widget("b"))
            assert summary(next(fresh)) == ("ADDED", "b")
            fresh.close()
    finally:
        loop.run(api.stop())


def test_a_continue_token_older_than_the_history_is_expired_with_a_token_to_go_on(loop: BackgroundLoop) -> None:
    """410 Expired with the etcd3 store's message and a new token that continues at the latest revision
    (apiserver/pkg/storage/etcd3 `handleCompactedErrorForPaging`;
    https://kubernetes.io/docs/reference/using-api/api-concepts/#retrieving-large-results-sets-in-chunks)."""
    api = start(loop, history_size=2)
    try:
        for i in range(3):
            api.put_object(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"c{i}", "namespace": "default"}}
            )
        url = f"{api.url}/api/v1/namespaces/default/configmaps"
        first = httpx.get(url, params={"limit": "1"}).json()
        assert [i["metadata"]["name"] for i in first["items"]] == ["c0"]
        for i in range(3):
            api.put_object(
                {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": f"d{i}", "namespace": "default"}}
            )
        expired = httpx.get(url, params={"limit": "1", "continue": first["metadata"]["continue"]})
        body = expired.json()
        assert (expired.status_code, body["reason"], body["code"]) == (410, "Expired", 410)
        assert body["message"].startswith(
            "The provided continue parameter is too old to display a consistent list result. You can start a new "
            "list without the continue parameter, or use the continue token in this response"
        )
        names: list[str] = []
        token = body["metadata"]["continue"]
        while token:
            page = httpx.get(url, params={"limit": "2", "continue": token}).json()
            names += [i["metadata"]["name"] for i in page["items"]]
            assert page["metadata"]["resourceVersion"] == api.resource_version
            token = page["metadata"].get("continue")
        assert names == ["c1", "c2", "d0", "d1", "d2"]
    finally:
        loop.run(api.stop())


def test_bookmarks_carry_the_current_resource_version(loop: BackgroundLoop) -> None:
    api = start(loop, bookmark_interval=0.1)
    try:
        with StandInClient(api.url) as client:
            client.create(widget("a"))
            events = client.watch(W, "widgets", "default", bookmarks=True, timeout_seconds=BOUND)
            assert summary(next(events)) == ("ADDED", "a")
            client.create({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "elsewhere"}})
            bookmark = next(events)
            assert bookmark["type"] == "BOOKMARK"
            assert bookmark["object"]["kind"] == "Widget"
            assert bookmark["object"]["metadata"]["resourceVersion"] == api.resource_version
            events.close()
    finally:
        loop.run(api.stop())


def test_send_initial_events_ends_the_initial_state_with_a_bookmark(api: KubeApiStandIn, client: StandInClient) -> None:
    client.create(widget("a"))
    params = {
        "watch": "true",
        "sendInitialEvents": "true",
        "allowWatchBookmarks": "true",
        "resourceVersionMatch": "NotOlderThan",
        "timeoutSeconds": str(BOUND),
    }
    with httpx.stream("GET", f"{api.url}/apis/example.com/v1/widgets", params=params) as response:
        lines = response.iter_lines()
        first, second = json.loads(next(lines)), json.loads(next(lines))
    assert summary(first) == ("ADDED", "a")
    assert second["type"] == "BOOKMARK"
    assert second["object"]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}


def test_timeout_seconds_ends_the_stream(client: StandInClient) -> None:
    started = time.monotonic()
    assert list(client.watch(W, "widgets", "default", timeout_seconds=1)) == []
    assert 0.9 <= time.monotonic() - started < BOUND


def test_label_selector_transitions_look_like_added_and_deleted(api: KubeApiStandIn, client: StandInClient) -> None:
    since = api.resource_version
    events = client.watch(
        W, "widgets", "default", resource_version=since, label_selector="tier=gold", timeout_seconds=BOUND
    )
    client.create({**widget("a"), "metadata": {"name": "a", "labels": {"tier": "gold"}}})
    client.create({**widget("b"), "metadata": {"name": "b", "labels": {"tier": "silver"}}})
    client.patch(W, "widgets", "default", "a", {"metadata": {"labels": {"tier": "silver"}}})
    client.patch(W, "widgets", "default", "b", {"metadata": {"labels": {"tier": "gold"}}})
    assert [summary(next(events)) for _ in range(3)] == [("ADDED", "a"), ("DELETED", "a"), ("ADDED", "b")]
    events.close()


def test_finalizer_lifecycle_as_seen_by_a_watcher(api: KubeApiStandIn, client: StandInClient) -> None:
    events = client.watch(W, "widgets", "default", resource_version=api.resource_version, timeout_seconds=BOUND)
    client.create({**widget("a"), "metadata": {"name": "a", "finalizers": ["example.com/cleanup"]}})
    client.delete(W, "widgets", "default", "a")
    client.patch(W, "widgets", "default", "a", {"metadata": {"finalizers": None}})
    seen = [next(events) for _ in range(3)]
    assert [summary(e) for e in seen] == [("ADDED", "a"), ("MODIFIED", "a"), ("DELETED", "a")]
    assert seen[1]["object"]["metadata"]["deletionTimestamp"]
    # The update that drops the last finalizer is the deletion and is never stored: the DELETED event carries
    # the last stored state, finalizer included, at the deletion's revision (apiserver/pkg/storage/etcd3/watcher.go
    # "this sends the *old* object"; kopf's processing.py notes the same of real clusters).
    assert seen[2]["object"]["metadata"]["finalizers"] == ["example.com/cleanup"]
    assert seen[2]["object"]["metadata"]["deletionTimestamp"] == seen[1]["object"]["metadata"]["deletionTimestamp"]
    assert int(seen[2]["object"]["metadata"]["resourceVersion"]) > int(seen[1]["object"]["metadata"]["resourceVersion"])
    events.close()


def test_drop_watches_cuts_streams_mid_flight(api: KubeApiStandIn, client: StandInClient) -> None:
    client.create(widget("a"))
    events = client.watch(W, "widgets", "default", timeout_seconds=BOUND)
    assert summary(next(events)) == ("ADDED", "a")
    api.drop_watches("widgets")
    with pytest.raises(httpx.TransportError):
        next(events)
    deadline = time.monotonic() + BOUND
    while api.open_watches("widgets") and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api.open_watches("widgets") == 0


def test_stop_does_not_wait_for_open_watches(loop: BackgroundLoop) -> None:
    api = start(loop)
    with StandInClient(api.url) as client:
        ended = threading.Event()

        def consume() -> None:
            for _ in client.watch(W, "widgets", "default", timeout_seconds=600):
                pass
            ended.set()

        consumer = threading.Thread(target=consume, daemon=True)
        consumer.start()
        deadline = time.monotonic() + BOUND
        while not api.open_watches("widgets") and time.monotonic() < deadline:
            time.sleep(0.01)
        loop.run(api.stop(), timeout=BOUND)
        assert ended.wait(BOUND), "stop left a 600 s watch open"


def test_an_injected_410_arrives_as_an_error_event(api: KubeApiStandIn, client: StandInClient) -> None:
    api.fail_next(1, status=410, verb="watch", resource="widgets")
    events = list(client.watch(W, "widgets", "default", resource_version=api.resource_version, timeout_seconds=BOUND))
    assert [(e["type"], e["object"]["code"], e["object"]["reason"]) for e in events] == [("ERROR", 410, "Expired")]
    client.create(widget("a"))
    again = client.watch(W, "widgets", "default", timeout_seconds=BOUND)
    assert summary(next(again)) == ("ADDED", "a")
    again.close()


def test_stop_releases_held_requests(loop: BackgroundLoop) -> None:
    api = start(loop)
    api.delay_next(1, 600, verb="list", resource="namespaces")
    answers: list[int] = []
    caller = threading.Thread(target=lambda: answers.append(httpx.get(f"{api.url}/api/v1/namespaces").status_code))
    caller.start()
    deadline = time.monotonic() + BOUND
    while not api.held_requests and time.monotonic() < deadline:
        time.sleep(0.01)
    assert api.held_requests == 1
    loop.run(api.stop(), timeout=BOUND)
    caller.join(BOUND)
    assert not caller.is_alive() and answers == [200], "stop left a 600 s hold in place"
