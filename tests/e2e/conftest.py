"""Fixtures of the end-to-end tests: a fresh cluster stand-in, simulator and operator per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harness import Environment


@pytest.fixture
def env(tmp_path: Path) -> Iterator[Environment]:
    environment = Environment(tmp_path)
    try:
        yield environment
    finally:
        environment.close()
