"""The kopf wiring: which handlers the operator registers, and the settings that rely on that."""

from __future__ import annotations

import kopf

import incidentio_operator.handlers  # noqa: F401  (registers the handlers on kopf's default registry)
from incidentio_operator.api import ALERTS
from incidentio_operator.controller.manager import Controller
from incidentio_operator.controller.metrics import Metrics
from incidentio_operator.controller.settings import Settings
from incidentio_operator.handlers.alerts import _news
from incidentio_operator.handlers.options import RunOptions
from incidentio_operator.handlers.startup import NoDiffBase, NoProgress, configure
from incidentio_operator.incidentio import IncidentIoClient
from incidentio_operator.kube import KubeClient

from .factories import alert_body


def test_only_event_handlers_watch_resources_so_kopf_needs_no_diff_base() -> None:
    registry = kopf.get_default_registry()
    watched = {h.id for h in registry._watching.get_all_handlers()}
    assert {"alert_event", "destination_event", "rule_event"} <= watched
    # A change handler (on.create/update/delete/field) would need kopf's last-handled configuration,
    # which NoDiffBase does not keep, and its progress across retries, which NoProgress does not keep.
    assert list(registry._changing.get_all_handlers()) == []
    assert list(registry._spawning.get_all_handlers()) == []


def test_the_diff_base_costs_nothing_per_event() -> None:
    storage = NoDiffBase()
    body = kopf.Body({"metadata": {"name": "orders", "annotations": {"a": "b"}}, "spec": {"state": "firing"}})
    assert storage.build(body=body) == {}
    assert storage.fetch(body=body) is None
    patch = kopf.Patch()
    storage.store(body=body, patch=patch, essence=kopf.BodyEssence())
    assert not patch, "nothing is written to the object"


def test_handler_progress_costs_nothing_per_event() -> None:
    storage = NoProgress()
    body = kopf.Body({"metadata": {"name": "orders", "annotations": {"a": "b"}}, "status": {"kopf": {}}})
    essence = kopf.BodyEssence({"spec": {"state": "firing"}})
    assert storage.clear(essence=essence) is essence, "no copy of the object per event"
    assert storage.fetch(key=kopf.HandlerId("alert_event"), body=body) is None
    patch = kopf.Patch()
    storage.touch(body=body, patch=patch, value="2026-12-01T06:00:00Z")
    storage.purge(key=kopf.HandlerId("alert_event"), body=body, patch=patch)
    assert not patch, "nothing is written to the object"


def test_the_operators_settings_install_it() -> None:
    settings = kopf.OperatorSettings()
    configure(settings)
    assert isinstance(settings.persistence.diffbase_storage, NoDiffBase)
    assert isinstance(settings.persistence.progress_storage, NoProgress)
    assert settings.posting.enabled is False, "the controller posts its own events"
    assert settings.watching.chunk_size == 500, "lists are paged by default"


def test_the_list_page_size_is_an_option() -> None:
    settings = kopf.OperatorSettings()
    configure(settings, RunOptions(list_page_size=7))
    assert settings.watching.chunk_size == 7
    configure(settings, RunOptions(list_page_size=0))
    assert settings.watching.chunk_size is None, "0 lists everything in one response"


async def test_the_echo_of_a_version_the_controller_holds_is_not_handed_over() -> None:
    async with IncidentIoClient() as incidentio:
        controller = Controller(Settings(), KubeClient(lambda: None), incidentio, Metrics())
        memo = kopf.Memo(controller=controller)
        body = alert_body()
        assert _news(event={"type": "ADDED", "object": body}, memo=memo)
        controller.observe(ALERTS, "ADDED", body)
        assert controller.queue.depth == 1
        assert not _news(event={"type": "MODIFIED", "object": body}, memo=memo), "our own write, seen again"
        assert _news(event={"type": "DELETED", "object": body}, memo=memo)
        assert _news(event={"type": None, "object": body}, memo=memo), "a relist is always handed over"
        newer = {**body, "metadata": {**body["metadata"], "resourceVersion": "101"}}
        assert _news(event={"type": "MODIFIED", "object": newer}, memo=memo)
