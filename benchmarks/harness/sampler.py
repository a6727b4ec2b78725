"""A thread that samples at a fixed period while a measured piece of work runs.

    with PeakRss(pid, period=0.05) as peak:   # one sample at entry, one every period, one at exit
        ...
    peak.peak_kib, peak.samples
"""

from __future__ import annotations

import threading

from benchmarks.harness.processes import process_tree, vm_rss_kib


class PeriodicSampler(threading.Thread):
    """Calls `sample()` at `with` entry, every `period` seconds, and once more at exit, so that even work
    shorter than one period is seen twice. Subclasses implement `sample()`; `entered()` and `exited()` are
    hooks run before the first and after the last sample."""

    def __init__(self, period: float):
        super().__init__(daemon=True)
        self.period = period
        self._done = threading.Event()

    def sample(self) -> None:
        raise NotImplementedError

    def entered(self) -> None:
        """Before the first sample."""

    def exited(self) -> None:
        """After the last sample."""

    def __enter__(self):
        self.entered()
        self.sample()
        self.start()
        return self

    def run(self) -> None:
        while not self._done.wait(self.period):
            self.sample()

    def __exit__(self, *exc) -> None:
        self._done.set()
        self.join()
        self.sample()
        self.exited()


class PeakRss(PeriodicSampler):
    """High-water mark of the summed VmRSS (KiB) of process `pid` and all its descendants, the most processes
    seen in that tree at once, and the number of samples taken."""

    def __init__(self, pid: int, period: float):
        super().__init__(period)
        self.pid, self.peak_kib, self.samples, self.max_procs = pid, 0, 0, 0

    def sample(self) -> None:
        pids = process_tree(self.pid)
        self.peak_kib = max(self.peak_kib, sum(vm_rss_kib(p) for p in pids))
        self.max_procs = max(self.max_procs, len(pids))
        self.samples += 1
