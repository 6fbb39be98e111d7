"""Peak memory of this process and its worker processes, sampled from ``/proc``.

``getrusage`` reports one process (or the largest finished child), but the matcher runs
in several worker processes at once: what a machine has to hold is the sum of the whole
process tree at its worst moment, so that is what is sampled.
"""

from __future__ import annotations

import os
import resource
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TypeVar

T = TypeVar("T")

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


def _tree_rss_kb(root: int) -> int:
    """Resident KiB of ``root`` and every process descending from it."""
    parent: dict[int, int] = {}
    rss: dict[int, int] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            pages = int((entry / "statm").read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue  # the process ended while we looked
        pid = int(entry.name)
        parent[pid] = int(stat.rsplit(")", 1)[1].split()[1])
        rss[pid] = pages * PAGE_KB
    total = 0
    for pid, kb in rss.items():
        node = pid
        while node not in (0, 1) and node != root:
            node = parent.get(node, 0)
        if node == root:
            total += kb
    return total


class PeakMemory:
    """``with PeakMemory() as peak: ...`` then ``peak.mb``: the largest resident size of
    the process tree seen every ``interval`` seconds (never below this process's own).
    ``peak.enter("name")`` labels what runs from then on; ``peak.mb_by_stage`` is the
    largest size seen under each label (where the memory goes, not only how much)."""

    def __init__(self, interval: float = 0.2) -> None:
        self.interval = interval
        self.peak_kb = 0
        self.stage = ""
        self.peak_kb_by_stage: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self.supported = Path("/proc/self/statm").exists()

    def _sample(self) -> None:
        root = os.getpid()
        while not self._stop.is_set():
            self._record(root)
            self._stop.wait(self.interval)

    def _record(self, root: int) -> None:
        stage, kb = self.stage, _tree_rss_kb(root)
        self.peak_kb = max(self.peak_kb, kb)
        self.peak_kb_by_stage[stage] = max(self.peak_kb_by_stage.get(stage, 0), kb)

    def enter(self, stage: str) -> None:
        """Label what runs from now on ``stage``; a stage shorter than the sampling
        interval still gets a sample (the size as it starts and as the last one ends)."""
        if self.supported:
            self._record(os.getpid())
        self.stage = stage
        if self.supported:
            self._record(os.getpid())

    def __enter__(self) -> PeakMemory:
        if self.supported:
            self._thread.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self._stop.set()
        if self.supported:
            self._thread.join()
            self.enter("")

    @property
    def mb_by_stage(self) -> dict[str, float]:
        return {k: round(v / 1024, 1) for k, v in self.peak_kb_by_stage.items() if k}

    @property
    def mb(self) -> float:
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
        return max(self.peak_kb, own) / 1024


class StageTimer:
    """Runs a benchmark's stages by name: ``timer("load", work)`` reports the stage to
    ``progress``, labels the memory sampled meanwhile and keeps its seconds in
    ``timer.seconds``. Use inside ``with timer.memory:``."""

    def __init__(self, progress: Callable[[str], None] = lambda stage: None) -> None:
        self.seconds: dict[str, float] = {}
        self.memory = PeakMemory()
        self._progress = progress

    def __call__(self, stage: str, work: Callable[[], T]) -> T:
        self._progress(stage)
        self.memory.enter(stage)
        started = time.perf_counter()
        result = work()
        self.seconds[stage] = round(time.perf_counter() - started, 3)
        return result
