"""Server-Sent Events: one tail of the event log per worker, fanned out to its clients.

A background thread blocks on the log (Redis ``XREAD`` or the file log) and hands each
event to every connected client's asyncio queue. A client that reconnects with
``Last-Event-ID`` first gets what it missed from the log, then the live feed; events it
already has are skipped by id, so the hand-over neither loses nor repeats any. A client
too slow to keep up is disconnected (it reconnects and resumes from its last id).

The wire format, heartbeats, disconnects and ending open streams when the server is asked
to stop (Ctrl-C) are sse-starlette's (:func:`event_response`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import threading
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

from sse_starlette import EventSourceResponse, ServerSentEvent
from tenacity import RetryCallState, Retrying, stop_when_event_set, wait_exponential

from arbx_dagster.service.background import BackgroundThread
from arbx_dagster.storage.event_log import Event, EventLog, parse_event_id

log = logging.getLogger(__name__)

QUEUE_SIZE = 1_000
RECONNECT_MILLISECONDS = 3_000  # how long a browser waits before reconnecting
_CLOSE = Event("0-0", "__close__", {})


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
        self._background = BackgroundThread("arbx-sse-tail")
        self._stop = self._background.stopping
        self.last_id: str | None = None
        self.healthy = False
        self.closing = False

    @property
    def clients(self) -> int:
        return len(self._subscribers)

    def start(self) -> None:
        if self._background.started:
            return
        try:
            self.last_id = self.log.latest_id() or "0-0"
        except Exception as exc:
            log.warning("event log unavailable at start: %s", exc)
        self._background.start(self._run)

    def stop(self) -> None:
        self._background.stop()
        self.close_clients()

    def close_clients(self) -> None:
        """End every open stream (shutdown); clients reconnect with their last id."""
        self.closing = True
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
        # A failed read (Redis restarting, the file briefly unreadable) is retried after
        # 0.5 s, 1 s, 2 s… up to 10 s, until it works again or the broadcaster stops.
        reading = Retrying(
            wait=wait_exponential(multiplier=0.5, max=10),
            stop=stop_when_event_set(self._stop),
            sleep=self._stop.wait,
            before_sleep=self._read_failed,
            retry_error_callback=lambda _: [],  # stopped while failing: nothing to hand out
        )
        while not self._stop.is_set():
            for event in reading(self._read):
                self.last_id = event.id
                if self._on_event is not None:
                    with contextlib.suppress(Exception):
                        self._on_event(event)
                self._fan_out(event)

    def _read(self) -> list[Event]:
        if self._stop.is_set():
            return []
        if self.last_id is None:
            self.last_id = self.log.latest_id() or "0-0"
        events = self.log.wait(self.last_id, timeout_seconds=0.5)
        self.healthy = True
        return events

    def _read_failed(self, state: RetryCallState) -> None:
        self.healthy = False
        error = state.outcome.exception() if state.outcome else None
        log.warning("event log read failed (%s); retrying in %.1f s", error, state.upcoming_sleep)

    def _fan_out(self, event: Event) -> None:
        with self._mutex:
            subscribers = list(self._subscribers)
        for sub in subscribers:
            with contextlib.suppress(RuntimeError):
                sub.loop.call_soon_threadsafe(sub.offer, event)


def server_sent(event: Event) -> ServerSentEvent:
    data = json.dumps(event.data, separators=(",", ":"), default=str)
    # No id (a reset): the client keeps its last one.
    return ServerSentEvent(data, event=event.type, id=event.id or None)


async def event_stream(
    broadcaster: Broadcaster, last_event_id: str | None
) -> AsyncIterator[ServerSentEvent]:
    """The events of one SSE response: missed events (after ``last_event_id``), then live
    events, until the client goes, falls too far behind, or the server closes."""
    sub = broadcaster.subscribe()
    if broadcaster.closing:
        sub.offer(_CLOSE)
    try:
        yield ServerSentEvent(
            comment=f"connected, last event {broadcaster.last_id or 'none'}",
            retry=RECONNECT_MILLISECONDS,
        )
        sent = parse_event_id(last_event_id)
        if sent is not None:
            missed, gap = await asyncio.to_thread(broadcaster.log.after, last_event_id or "")
            if gap:
                # Some events were trimmed from the log: the client must refetch the list.
                reason = "events since your Last-Event-ID are no longer available"
                yield server_sent(Event("", "reset", {"reason": reason}))
            for event in missed:
                yield server_sent(event)
                sent = parse_event_id(event.id)
        while True:
            event = await sub.queue.get()
            if event is _CLOSE or sub.overflowed:
                return
            position = parse_event_id(event.id)
            if sent is not None and position is not None and position <= sent:
                continue  # already delivered from the backlog
            sent = position
            yield server_sent(event)
    finally:
        broadcaster.unsubscribe(sub)


def event_response(
    broadcaster: Broadcaster, last_event_id: str | None, heartbeat_seconds: float
) -> EventSourceResponse:
    """The SSE response, with a comment every ``heartbeat_seconds`` to keep proxies from
    closing an idle connection."""
    return EventSourceResponse(
        event_stream(broadcaster, last_event_id),
        headers={"Cache-Control": "no-cache"},
        ping=heartbeat_seconds,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
    )
