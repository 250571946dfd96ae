"""Fixtures of the stand-in's own tests (test_kubesim_*): a background loop, a stand-in serving Widgets, a client.

A test module that defines a fixture of the same name (its own CRDs, validator or objects) uses its own instead.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from incidentio_operator.standins.kubesim import KubeApiStandIn, StandInClient
from incidentio_operator.standins.servers import BackgroundLoop

from .test_kubesim import WIDGETS


@pytest.fixture(scope="module")
def loop() -> Iterator[BackgroundLoop]:
    background = BackgroundLoop("kubesim-tests")
    yield background
    background.close()


@pytest.fixture
def api(loop: BackgroundLoop) -> Iterator[KubeApiStandIn]:
    stand_in = KubeApiStandIn(crds=[WIDGETS], validator_factory=None)
    loop.run(stand_in.start())
    stand_in.put_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "default"}})
    yield stand_in
    loop.run(stand_in.stop())


@pytest.fixture
def client(api: KubeApiStandIn) -> Iterator[StandInClient]:
    with StandInClient(api.url) as c:
        yield c
