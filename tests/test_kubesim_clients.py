"""Real clients against the API stand-in: a tiny kopf operator, the official kubernetes client, our CRDs."""

from __future__ import annotations

import asyncio
import base64
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import kopf
import kubernetes
import pytest

from incidentio_operator.offline.schema import load_crds
from incidentio_operator.standins.kubesim import ApiError, KubeApiStandIn, StandInClient
from incidentio_operator.standins.servers import BackgroundLoop

from .test_kubesim import WIDGETS, W, widget

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
BOUND = 20.0


def eventually(condition: Callable[[], Any], what: str) -> Any:
    """Poll until `condition()` is truthy, for at most BOUND seconds."""
    deadline = time.monotonic() + BOUND
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
def server_loop() -> Iterator[BackgroundLoop]:
    background = BackgroundLoop("kubesim-server")
    yield background
    background.close()


@pytest.fixture
def api(server_loop: BackgroundLoop) -> Iterator[KubeApiStandIn]:
    stand_in = KubeApiStandIn(crds=[WIDGETS], validator_factory=None)
    server_loop.run(stand_in.start())
    stand_in.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    yield stand_in
    server_loop.run(stand_in.stop())


def tiny_operator(seen: list[tuple[str, str]]) -> kopf.OperatorRegistry:
    """A private registry, so that handlers other modules register on kopf's default one stay out."""
    registry = kopf.OperatorRegistry()

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
        # Short backoffs and watch timeouts keep reconnects after injected faults within the test's bounds.
        settings.networking.error_backoffs = [0.1, 0.2, 0.5]
        settings.watching.server_timeout = 30
        settings.watching.reconnect_backoff = 0.1
        settings.persistence.finalizer = "example.com/tiny-operator"

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_with_kubeconfig(**kwargs)

    @kopf.on.create("example.com", "v1", "widgets", id="created", registry=registry)
    def created(spec: kopf.Spec, body: kopf.Body, **_: Any) -> dict[str, Any]:
        kopf.info(body, reason="Measured", message=f"size {spec.get('size')}")
        return {"size": spec.get("size")}

    @kopf.on.update("example.com", "v1", "widgets", id="resized", field="spec.size", registry=registry)
    def resized(new: Any, **_: Any) -> dict[str, Any]:
        return {"size": new}

    @kopf.on.delete("example.com", "v1", "widgets", id="deleted", registry=registry)
    def deleted(name: str, **_: Any) -> None:
        seen.append(("deleted", name))

    @kopf.on.event("example.com", "v1", "widgets", registry=registry)
    def observed(type: str | None, name: str, **_: Any) -> None:
        seen.append((str(type), name))

    return registry


def test_a_real_kopf_operator_discovers_watches_and_patches_through_the_stand_in(
    api: KubeApiStandIn, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KUBECONFIG", str(api.write_kubeconfig(tmp_path / "kubeconfig")))
    seen: list[tuple[str, str]] = []
    registry = tiny_operator(seen)
    operator_loop = BackgroundLoop("kopf")
    stop_flag = asyncio.Event()
    running = operator_loop.submit(
        kopf.operator(registry=registry, standalone=True, namespaces=["default"], stop_flag=stop_flag)
    )
    client = StandInClient(api.url)
    try:
        eventually(lambda: api.open_watches("widgets"), "kopf to watch widgets")
        client.create(widget("w1", size=3))

        def status() -> dict[str, Any]:
            obj = client.get(W, "widgets", "default", "w1") or {}
            return dict(obj.get("status") or {})

        assert eventually(lambda: status().get("created"), "the create handler's result") == {"size": 3}
        stored = client.get(W, "widgets", "default", "w1")
        assert stored is not None and "example.com/tiny-operator" in stored["metadata"]["finalizers"]
        assert ("None", "w1") in seen or ("ADDED", "w1") in seen

        api.drop_watches("widgets")
        api.fail_next(1, status=500, verb="patch", resource="widgets", subresource="status")
        client.patch(W, "widgets", "default", "w1", {"spec": {"size": 5}})
        assert eventually(lambda: status().get("resized/spec.size"), "the update handler after a dropped watch") == {
            "size": 5
        }
        assert eventually(
            lambda: [
                e for e in client.events("default") if (e["reason"], e["involvedObject"]["name"]) == ("Measured", "w1")
            ],
            "kopf's events",
        )

        client.delete(W, "widgets", "default", "w1")
        eventually(lambda: client.get(W, "widgets", "default", "w1") is None, "kopf to release its finalizer")
        assert ("deleted", "w1") in seen
        assert api.count(verb="patch", resource="widgets", subresource="status") >= 2
    finally:
        operator_loop.loop.call_soon_threadsafe(stop_flag.set)
        running.result(BOUND)
        operator_loop.close()
        client.close()


def test_the_official_kubernetes_client_works_through_the_kubeconfig(api: KubeApiStandIn, tmp_path: Path) -> None:
    config = api.write_kubeconfig(tmp_path / "kubeconfig")
    api_client = kubernetes.config.new_client_from_config(config_file=str(config))
    try:
        core = kubernetes.client.CoreV1Api(api_client)
        custom = kubernetes.client.CustomObjectsApi(api_client)
        secret = core.create_namespaced_secret(
            "default", {"metadata": {"name": "key"}, "stringData": {"apiKey": "s3cret"}}
        )
        assert base64.b64decode(secret.data["apiKey"]) == b"s3cret"
        created = custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget("k", size=1))
        patched = custom.patch_namespaced_custom_object_status(
            "example.com", "v1", "default", "widgets", "k", {"status": {"phase": "Ready"}}
        )
        assert patched["status"] == {"phase": "Ready"}
        assert patched["metadata"]["generation"] == created["metadata"]["generation"] == 1
        listed = custom.list_namespaced_custom_object("example.com", "v1", "default", "widgets")
        assert [i["metadata"]["name"] for i in listed["items"]] == ["k"]
        with pytest.raises(kubernetes.client.ApiException) as exc:
            custom.create_namespaced_custom_object("example.com", "v1", "default", "widgets", widget("k"))
        assert exc.value.status == 409
        watch = kubernetes.watch.Watch()
        since = listed["metadata"]["resourceVersion"]

        def modify_later() -> None:
            custom.patch_namespaced_custom_object("example.com", "v1", "default", "widgets", "k", {"spec": {"size": 2}})

        threading.Thread(target=modify_later).start()
        for event in watch.stream(
            custom.list_namespaced_custom_object,
            "example.com",
            "v1",
            "default",
            "widgets",
            resource_version=since,
            timeout_seconds=int(BOUND),
        ):
            assert event["type"] == "MODIFIED" and event["object"]["spec"]["size"] == 2
            watch.stop()
    finally:
        api_client.close()


def test_the_project_crds_validate_and_default_like_the_api_server(server_loop: BackgroundLoop) -> None:
    api = KubeApiStandIn(crds=load_crds())
    server_loop.run(api.start())
    try:
        with StandInClient(api.url) as client:
            applied = [
                obj
                for path in ("namespace.yaml", "secret.yaml", "destination.yaml", "rules.yaml")
                for obj in client.apply_file(EXAMPLES / path)
            ]
            for path in sorted((EXAMPLES / "alerts").glob("*.yaml")):
                applied += client.apply_file(path)
            alerts = [o for o in applied if o["kind"] == "DataAlert"]
            assert alerts and all(a["spec"]["state"] == "triggered" for a in alerts)  # defaulted
            bad = {**alerts[0], "metadata": {"name": "bad", "namespace": "data-platform"}}
            bad["spec"] = {**bad["spec"], "state": "bogus"}
            with pytest.raises(ApiError) as exc:
                client.create(bad)
            assert exc.value.status == 422 and exc.value.reason == "Invalid"
            assert exc.value.message.startswith(
                'DataAlert.alerting.armor.dev "bad" is invalid: spec.state: Unsupported value: "bogus"'
            )
            assert exc.value.details["causes"][0]["reason"] == "FieldValueNotSupported"
            name = alerts[0]["metadata"]["name"]
            written = client.patch_status(
                "alerting.armor.dev/v1alpha1",
                "dataalerts",
                "data-platform",
                name,
                {"status": {"observedGeneration": 1, "unknownField": "pruned"}},
            )
            assert written["status"].get("observedGeneration") == 1 and "unknownField" not in written["status"]
    finally:
        server_loop.run(api.stop())
