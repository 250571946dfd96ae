"""The benchmark harness at tiny sizes: every scenario runs end to end and yields every figure, so it cannot rot."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from bench.report import FIGURES

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.e2e
@pytest.mark.timeout(240)
def test_quick_bench_produces_every_figure(tmp_path: Path) -> None:
    output = tmp_path / "bench.json"
    result = subprocess.run(
        [sys.executable, "-m", "bench", "--quick", "--json", str(output), "--workdir", str(tmp_path / "work")],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=230,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(output.read_text())
    rows = {(row["scenario"], row["figure"]): row for row in summary["figures"]}
    assert set(rows) == {(figure.scenario, figure.key) for figure in FIGURES}
    for key, row in rows.items():
        assert row["runs"] and row["median"] is not None, key
        assert row["target"] is None or row["pass"] is not None, key
    # The printed table carries the same rows.
    assert all(figure.label in result.stdout for figure in FIGURES)
    assert summary["machine"]["cores"]
