"""Relists after compaction: the stand-in's 410 Expired for a resumed watch, and what a real kopf does about it.

The real server keeps a bounded change history (etcd compaction, a watch cache rebuilt when the API server
restarts); a client that resumes a watch from an older resourceVersion gets 410 and "must handle the case
by recognizing the status code 410 Gone, clearing their local cache, performing a new get or list
operation, and starting the watch from the resourceVersion that was returned"
(https://kubernetes.io/docs/reference/using-api/api-concepts/#efficient-detection-of-changes).
"""

from __future__ import annotations

import asyncio
import urllib.parse
from pathlib import Path
from typing import Any

import kopf
import pytest

from incidentio_operator.standins.kubesim import KubeApiStandIn, StandInClient
from incidentio_operator.standins.servers import BackgroundLoop

from .test_kubesim import W, widget
from .test_kubesim_clients import BOUND, eventually
from .test_kubesim_watch import summary


def test_compact_expires_every_older_resource_version(api: KubeApiStandIn, client: StandInClient) -> None:
    before = client.create(widget("a"))["metadata"]["resourceVersion"]
    client.patch(W, "widgets", "default", "a", {"spec": {"size": 2}})
    compacted = api.compact()
    assert compacted == api.resource_version
    expired = list(client.watch(W, "widgets", "default", resource_version=before, timeout_seconds=int(BOUND)))
    assert [(e["type"], e["object"]["reason"], e["object"]["message"]) for e in expired] == [
        ("ERROR", "Expired", f"too old resource version: {before} ({compacted})")
    ]
    live = client.watch(W, "widgets", "default", resource_version=compacted, timeout_seconds=int(BOUND))
    client.create(widget("b"))
    assert summary(next(live)) == ("ADDED", "b")
    live.close()


def test_a_cut_watch_resumed_after_compaction_gets_410_and_a_relist_starts_over(
    api: KubeApiStandIn, client: StandInClient
) -> None:
    client.create(widget("a"))
    stream = client.watch(W, "widgets", "default", timeout_seconds=int(BOUND))
    last_seen = next(stream)["object"]["metadata"]["resourceVersion"]
    api.drop_watches("widgets")
    stream.close()
    client.create(widget("b"))
    api.compact()
    resumed = list(client.watch(W, "widgets", "default", resource_version=last_seen, timeout_seconds=int(BOUND)))
    assert [(e["type"], e["object"]["code"]) for e in resumed] == [("ERROR", 410)]
    listed = client.list(W, "widgets", "default")
    assert [o["metadata"]["name"] for o in listed] == ["a", "b"]
    # Nothing was missed by a client that had seen everything up to the compaction: it resumes as usual.
    caught_up = client.watch(W, "widgets", "default", resource_version=api.resource_version, timeout_seconds=int(BOUND))
    client.create(widget("c"))
    assert summary(next(caught_up)) == ("ADDED", "c")
    caught_up.close()


def relisting_operator(
    events: list[tuple[str, str]], deleted: list[str], indexed: list[set[str]]
) -> kopf.OperatorRegistry:
    """An operator with the three kinds of handler whose view of the cluster a relist could change."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        settings.networking.error_backoffs = [0.1, 0.2, 0.5]
        settings.watching.server_timeout = 30
        settings.watching.reconnect_backoff = 0.1
        settings.persistence.finalizer = "example.com/relisting-operator"
        settings.posting.enabled = False

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.index("example.com", "v1", "widgets", id="widget_names", registry=registry)
    def widget_names(name: str, **_: Any) -> dict[str, bool]:
        return {name: True}

    # Only labelled widgets get kopf's finalizer, so the others can disappear while kopf is not looking.
    @kopf.on.delete("example.com", "v1", "widgets", labels={"guarded": "yes"}, registry=registry)
    def released(name: str, **_: Any) -> None:
        deleted.append(name)

    @kopf.on.event("example.com", "v1", "widgets", registry=registry)
    def observed(type: str | None, name: str, widget_names: kopf.Index[str, bool], **_: Any) -> None:
        events.append((str(type), name))
        indexed.append(set(widget_names))

    return registry


def test_kopf_relists_after_410_and_never_hears_of_what_was_deleted_while_its_watch_was_down(
    api: KubeApiStandIn, client: StandInClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """kopf (watching.py `continuous_watch`) answers the 410 with a new list, and presents each listed object as
    an event of type None; an object deleted while the watch was down gets no DELETED event, no handler call,
    and stays in kopf's indexes."""
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    events: list[tuple[str, str]] = []
    deleted: list[str] = []
    indexed: list[set[str]] = []
    operator_loop = BackgroundLoop("kopf-relist")
    stop_flag = asyncio.Event()
    running = operator_loop.submit(
        kopf.operator(
            registry=relisting_operator(events, deleted, indexed),
            standalone=True,
            namespaces=["default"],
            stop_flag=stop_flag,
        )
    )
    try:
        eventually(lambda: api.open_watches("widgets"), "kopf to watch widgets")
        client.create(widget("kept"))
        client.create(widget("gone"))
        client.create({**widget("guarded"), "metadata": {"name": "guarded", "labels": {"guarded": "yes"}}})

        def finalizers(name: str) -> list[str]:
            return list(
                ((client.get(W, "widgets", "default", name) or {}).get("metadata") or {}).get("finalizers") or ()
            )

        eventually(lambda: finalizers("guarded") == ["example.com/relisting-operator"], "kopf's finalizer")
        eventually(lambda: indexed and indexed[-1] == {"kept", "gone", "guarded"}, "kopf to index all three")

        # The watch goes down and its reconnect waits while the cluster changes and its history is compacted.
        api.hold_next(1, verb="watch", resource="widgets")
        api.drop_watches("widgets")
        eventually(lambda: api.held_requests == 1, "kopf to try to resume its watch")
        seen_before = len(events)
        lists_before = api.count(verb="list", resource="widgets")
        client.delete(W, "widgets", "default", "gone")
        client.delete(W, "widgets", "default", "guarded")
        client.create(widget("new"))
        compacted = int(api.compact())
        api.release_held()

        eventually(lambda: api.count(verb="list", resource="widgets") > lists_before, "kopf to relist")
        eventually(lambda: client.get(W, "widgets", "default", "guarded") is None, "kopf to release 'guarded'")
        eventually(lambda: ("DELETED", "guarded") in events[seen_before:], "the DELETED event of 'guarded'")
        resumed = [c for c in api.requests if c.verb == "watch" and c.resource == "widgets"]
        since = [urllib.parse.parse_qs(urllib.parse.urlsplit(c.path).query).get("resourceVersion") for c in resumed]
        assert any(rv and int(rv[0]) < compacted for rv in since), "kopf resumed from its last resourceVersion"

        after = events[seen_before:]
        assert {("None", "kept"), ("None", "guarded"), ("None", "new")} <= set(after)
        assert not [e for e in after if e[1] == "gone"], "nothing at all about 'gone' after the relist"
        assert deleted == ["guarded"], "the delete handler ran only for the object kopf's finalizer held"
        assert "gone" in indexed[-1], "kopf's index still holds the object deleted while the watch was down"
    finally:
        operator_loop.loop.call_soon_threadsafe(stop_flag.set)
        running.result(BOUND)
        operator_loop.close()
