"""The operator as a measured child process: started without debug logging, its RSS and CPU sampled from /proc."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tests.harness import operator_command, operator_environment

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Sample:
    at: float  # time.monotonic() of the bench process
    rss_bytes: int
    hwm_bytes: int
    cpu_seconds: float


def read_sample(pid: int) -> Sample | None:
    """VmRSS, VmHWM and user+system CPU of a process, or None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)

    def kib(name: str) -> int:
        return int(fields.get(name, "0 kB").split()[0]) * 1024

    # The command name in field 2 may contain spaces; the numeric fields start after its ")".
    numbers = stat.rsplit(")", 1)[1].split()
    cpu = (int(numbers[11]) + int(numbers[12])) / CLOCK_TICKS
    return Sample(time.monotonic(), kib("VmRSS"), kib("VmHWM"), cpu)


def machine_busy_seconds() -> float:
    """CPU seconds every core of the machine has spent busy since boot (/proc/stat, all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLOCK_TICKS


class OperatorProcess:
    """``incidentio-operator run`` at production log level (the e2e harness runs it with --verbose)."""

    def __init__(self, kubeconfig: Path, log_path: Path, args: Sequence[str] = (), *, sample_every: float = 0.05):
        env = operator_environment(kubeconfig)
        command = operator_command(*args)
        self._log = log_path.open("ab")
        self.started_at = time.monotonic()
        self.process = subprocess.Popen(command, env=env, stdout=self._log, stderr=subprocess.STDOUT)
        self.samples: list[Sample] = []
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._every = sample_every
        self._sampler = threading.Thread(target=self._sample, name="rss-sampler", daemon=True)
        self._sampler.start()

    def _sample(self) -> None:
        # Polling is how the peak is observed between reads; VmHWM covers what falls between two polls.
        while not self._done.wait(self._every):
            sample = read_sample(self.process.pid)
            if sample is None:
                return
            with self._lock:
                self.samples.append(sample)

    def snapshot(self) -> list[Sample]:
        with self._lock:
            return list(self.samples)

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def wait_idle(self, *, after: float, quiet: float = 1.0, cpu_share: float = 0.03, timeout: float = 120.0) -> float:
        """The bench-clock time at which the process went quiet: the start of the first window of ``quiet``
        seconds, beginning at or after ``after``, in which it used less than ``cpu_share`` of one core.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"the operator exited with {self.process.returncode}")
            samples = [s for s in self.snapshot() if s.at >= after]
            for i, first in enumerate(samples):
                for last in samples[i + 1 :]:
                    if last.at - first.at >= quiet:
                        if last.cpu_seconds - first.cpu_seconds < cpu_share * (last.at - first.at):
                            return first.at
                        break
            time.sleep(0.2)
        raise TimeoutError(f"the operator did not go idle within {timeout}s")

    def stop(self) -> None:
        self._done.set()
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._sampler.join(timeout=5)
        self._log.close()
