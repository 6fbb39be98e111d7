"""A daemon thread the service runs beside its requests (tailing the event log, watching
runs), started once and stopped at shutdown."""

from __future__ import annotations

import threading
from collections.abc import Callable


class BackgroundThread:
    """``target`` on a daemon thread; ``stopping`` is set when it should end."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.stopping = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def started(self) -> bool:
        return self._thread is not None

    def start(self, target: Callable[[], None]) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=target, name=self.name, daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 3.0) -> None:
        self.stopping.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout)
            self._thread = None
