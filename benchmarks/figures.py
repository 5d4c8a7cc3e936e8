"""Figures the benchmarks share: percentiles and latency lines, a process's memory and CPU."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

import psutil

__all__ = ["MemorySampler", "cpu_seconds", "describe", "percentile"]


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def describe(latencies: list[float]) -> str:
    """p50, p99 and max of end-to-end latencies in ms."""
    return (
        f"p50 {percentile(latencies, 50):.1f} ms, p99 {percentile(latencies, 99):.1f} ms, "
        f"max {max(latencies):.1f} ms"
    )


@dataclass
class MemorySampler:
    """Samples a process's RSS every 100 ms in a thread; keeps the peak."""

    pid: int
    peak: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        process = psutil.Process(self.pid)
        while not self._stop.wait(0.1):
            try:
                self.peak = max(self.peak, process.memory_info().rss)
            except psutil.Error:
                return

    def stop(self) -> float:
        """Stops sampling; returns the peak in MB."""
        self._stop.set()
        self._thread.join()
        return self.peak / 2**20


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system
