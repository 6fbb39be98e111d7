"""Server-Sent Events: one tail of the event log per worker, fanned out to its clients.

A background thread blocks on the log (Redis ``XREAD`` or the file log) and hands each
event to every connected client's asyncio queue. A client that reconnects with
``Last-Event-ID`` first gets what it missed from the log, then the live feed; events it
already has are skipped by id, so the hand-over neither loses nor repeats any. A client
too slow to keep up is disconnected (it reconnects and resumes from its last id).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from arbx_dagster.storage.event_log import Event, EventLog, parse_event_id

log = logging.getLogger(__name__)

QUEUE_SIZE = 1_000
_CLOSE = Event("0-0", "__close__", {})
# Set when uvicorn is asked to stop: open streams end at once instead of holding the
# graceful shutdown until its timeout (clients reconnect to another worker).
SHUTTING_DOWN = threading.Event()


def chain_signal_handlers() -> None:
    """Have SIGINT/SIGTERM also end the SSE streams before the server's own handling.

    Called at app start-up: under uvicorn that runs on the main thread after the server
    installed its handlers, which stay in charge (they are called right after).
    """
    if threading.current_thread() is not threading.main_thread():
        return  # an embedded server (tests): it ends streams through close_clients()
    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if getattr(previous, "_arbx_chained", False):
            continue

        def handler(signum: int, frame: Any, previous: Any = previous) -> None:
            SHUTTING_DOWN.set()
            if callable(previous):
                previous(signum, frame)
            elif previous == signal.SIG_DFL:  # nobody else handles it: die as before
                signal.signal(signum, signal.SIG_DFL)
                signal.raise_signal(signum)

        handler._arbx_chained = True  # type: ignore[attr-defined]
        signal.signal(sig, handler)


@dataclass(eq=False)
class Subscriber:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    overflowed: bool = False

    def offer(self, event: Event) -> None:
        """Called on the event loop's thread."""
        if self.overflowed:
            return
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.overflowed = True


class Broadcaster:
    def __init__(self, event_log: EventLog, on_event: Callable[[Event], None] | None = None):
        self.log = event_log
        self._on_event = on_event
        self._subscribers: set[Subscriber] = set()
        self._mutex = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_id: str | None = None
        self.healthy = False
        self._closing = False

    @property
    def closing(self) -> bool:
        return self._closing or SHUTTING_DOWN.is_set()

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def start(self) -> None:
        if self._thread is not None:
            return
        try:
            self.last_id = self.log.latest_id() or "0-0"
        except Exception as exc:
            log.warning("event log unavailable at start: %s", exc)
        self._thread = threading.Thread(target=self._run, name="arbx-sse-tail", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=3)
            self._thread = None
        self.close_clients()

    def close_clients(self) -> None:
        """End every open stream (shutdown); clients reconnect with their last id."""
        self._closing = True
        self._fan_out(_CLOSE)

    def subscribe(self) -> Subscriber:
        sub = Subscriber(asyncio.get_running_loop())
        with self._mutex:
            self._subscribers.add(sub)
        return sub

    def unsubscribe(self, sub: Subscriber) -> None:
        with self._mutex:
            self._subscribers.discard(sub)

    def _run(self) -> None:
        backoff = 0.5
        while not self._stop.is_set():
            if SHUTTING_DOWN.is_set() and not self._closing:
                self.close_clients()
            try:
                if self.last_id is None:
                    self.last_id = self.log.latest_id() or "0-0"
                events = self.log.wait(self.last_id, timeout_seconds=0.5)
                self.healthy = True
                backoff = 0.5
            except Exception as exc:  # Redis restarting, file briefly unreadable
                self.healthy = False
                log.warning("event log read failed (%s); retrying in %.1f s", exc, backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 10)
                continue
            for event in events:
                self.last_id = event.id
                if self._on_event is not None:
                    with contextlib.suppress(Exception):
                        self._on_event(event)
                self._fan_out(event)

    def _fan_out(self, event: Event) -> None:
        with self._mutex:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            with contextlib.suppress(RuntimeError):
                sub.loop.call_soon_threadsafe(sub.offer, event)


def format_event(event: Event) -> str:
    data = json.dumps(event.data, separators=(",", ":"), default=str)
    head = f"id: {event.id}\n" if event.id else ""  # no id: the client keeps its last one
    return f"{head}event: {event.type}\ndata: {data}\n\n"


async def event_stream(
    broadcaster: Broadcaster,
    last_event_id: str | None,
    heartbeat_seconds: float,
) -> AsyncIterator[str]:
    """The text of one SSE response: missed events (after ``last_event_id``), then live
    events, with a comment line every ``heartbeat_seconds`` to keep proxies from closing
    an idle connection."""
    sub = broadcaster.subscribe()
    if broadcaster.closing:
        sub.offer(_CLOSE)
    try:
        yield f"retry: 3000\n: connected, last event {broadcaster.last_id or 'none'}\n\n"
        sent = parse_event_id(last_event_id)
        if sent is not None:
            missed, gap = await asyncio.to_thread(broadcaster.log.after, last_event_id or "")
            if gap:
                # Some events were trimmed from the log: the client must refetch the list.
                reason = "events since your Last-Event-ID are no longer available"
                yield format_event(Event("", "reset", {"reason": reason}))
            for event in missed:
                yield format_event(event)
                sent = parse_event_id(event.id)
        while True:
            try:
                event = await asyncio.wait_for(sub.queue.get(), timeout=heartbeat_seconds)
            except TimeoutError:
                if sub.overflowed:
                    return
                yield ": heartbeat\n\n"
                continue
            if event is _CLOSE or sub.overflowed:
                return
            position = parse_event_id(event.id)
            if sent is not None and position is not None and position <= sent:
                continue  # already delivered from the backlog
            sent = position
            yield format_event(event)
    finally:
        broadcaster.unsubscribe(sub)
