"""The privacy button: one press locks every piece of personal data on the station.

Wiring: a momentary push button between the GPIO pin (default GPIO17) and ground; the pin's
internal pull-up holds it high, so *pressed is low*.

Rules this module keeps, and its tests prove:

- **The first edge locks.** No debounce delay in the safe direction: the lock request goes to
  the loop on the very first press edge. gpiozero's ``bounce_time`` is *not* used (lgpio's
  debounce reports an edge only once the level has been stable for the whole period, i.e.
  it delays the first edge). Debouncing here only suppresses duplicate *events* within
  ``event_gap`` after one was sent; it never delays one.
- **The button can only ask to lock.** There is no unlock path through it: bounces, repeated
  presses, presses during or after ``close()`` can at worst send another lock request.
- **A long press** (held ``hold_time``, default 2 s) has one meaning: *pause camera and
  microphone during a call* (:attr:`ButtonEvent.PAUSE_MEDIA`, sent once per hold). The press
  that starts it has already locked. What pausing means is the daemon's decision.
- gpiozero calls back on its own threads (or the driving thread, with mock pins); every event
  is handed to the asyncio loop with ``call_soon_threadsafe``, and the handlers run there.
  An exception in a handler is logged, never raised into gpiozero.
"""

from __future__ import annotations

import asyncio
import enum
import inspect
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from gpiozero import Button

from .errors import GpioUnavailableError

__all__ = [
    "DEFAULT_BUTTON_PIN",
    "ButtonEvent",
    "ButtonHandler",
    "PrivacyButton",
]

DEFAULT_BUTTON_PIN = "GPIO17"

_log = logging.getLogger(__name__)

#: A handler: a plain function, or one returning an awaitable (run as a task on the loop).
ButtonHandler = Callable[[], Any]


class _GuardedButton(Button):  # type: ignore[misc]  # gpiozero is untyped
    """gpiozero's ``Button`` whose edge handling never raises into the pin's callback thread.

    gpiozero 2.0.1 races when an edge arrives while ``close()`` runs: ``HoldMixin`` clears its
    hold thread first, and the edge then fails with ``AttributeError`` in
    ``_fire_activated`` (after ``when_pressed`` already ran, so the lock is not lost). A
    resident pressing while the daemon shuts down must not crash the pin's thread.
    """

    def close(self) -> None:
        # While the button is held, gpiozero's hold thread sleeps on "released" for up to
        # hold_time and close() would wait that out; waking it first makes close() prompt.
        # It cannot fire "held" on the way out: it only fires when that wait times out.
        inactive = getattr(self, "_inactive_event", None)
        if inactive is not None:
            inactive.set()
        super().close()

    def _pin_changed(self, ticks: Any, state: Any) -> None:
        try:
            super()._pin_changed(ticks, state)
        except Exception:
            if not self.closed:
                _log.exception("privacy button: gpiozero failed handling an edge")


class ButtonEvent(enum.Enum):
    """What the privacy button can ask for. There is deliberately no "unlock"."""

    #: Lock the station now (every press, on its first edge).
    LOCK = "lock"
    #: Pause camera and microphone during a call (a press held for ``hold_time``).
    PAUSE_MEDIA = "pause_media"


class PrivacyButton:
    """The physical privacy button through gpiozero (see the module docstring).

    ``pin_factory`` is injected (gpiozero's ``MockFactory`` in tests and the demo); ``loop``
    defaults to the running loop, so construct it inside the daemon's loop. ``on_press`` and
    ``on_long_press`` may also be set later as attributes.
    """

    def __init__(
        self,
        pin: int | str = DEFAULT_BUTTON_PIN,
        *,
        pin_factory: Any = None,
        loop: asyncio.AbstractEventLoop | None = None,
        on_press: ButtonHandler | None = None,
        on_long_press: ButtonHandler | None = None,
        hold_time: float = 2.0,
        pull_up: bool = True,
        event_gap: float = 0.25,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if hold_time <= 0:
            raise ValueError("hold_time must be positive")
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                raise RuntimeError(
                    "PrivacyButton needs the asyncio loop: pass loop= or build it inside the loop"
                ) from None
        self._loop = loop
        self.on_press = on_press
        self.on_long_press = on_long_press
        self._event_gap = event_gap
        self._monotonic = monotonic
        self._lock = threading.Lock()
        self._last_lock_at: float | None = None
        self._lock_pending = False
        self._closed = False
        #: Lock requests handed to the loop (after duplicate suppression).
        self.lock_requests = 0
        #: Press edges suppressed as duplicates within ``event_gap``.
        self.suppressed = 0
        #: Press edges folded into a lock request already on its way to the loop.
        self.coalesced = 0
        #: Pause requests handed to the loop.
        self.pause_requests = 0
        self._handler_tasks: set[asyncio.Future[Any]] = set()
        try:
            self._button = _GuardedButton(
                pin,
                pull_up=pull_up,
                bounce_time=None,
                hold_time=hold_time,
                hold_repeat=False,
                pin_factory=pin_factory,
            )
        except Exception as exc:  # gpiozero raises many kinds (pin in use, no factory, ...)
            raise GpioUnavailableError(
                f"privacy button on {pin} unavailable: {type(exc).__name__}: {exc}"
            ) from exc
        self._button.when_pressed = self._pressed_edge
        self._button.when_held = self._held

    # -- gpiozero's threads -------------------------------------------------------------

    def _pressed_edge(self) -> None:
        try:
            if self._closed:
                return
            now = self._monotonic()
            with self._lock:
                last = self._last_lock_at
                if last is not None and 0 <= now - last < self._event_gap:
                    self.suppressed += 1
                    return
                if self._lock_pending:
                    # A lock request is queued and will run after this edge: a chattering
                    # contact (thousands of edges a second) must never flood the loop.
                    self.coalesced += 1
                    return
                self._lock_pending = True
                self._last_lock_at = now
                self.lock_requests += 1
            self._post(ButtonEvent.LOCK)
        except Exception:  # never into gpiozero's thread
            _log.exception("privacy button: press edge handling failed")

    def _held(self) -> None:
        try:
            if self._closed:
                return
            with self._lock:
                self.pause_requests += 1
            self._post(ButtonEvent.PAUSE_MEDIA)
        except Exception:
            _log.exception("privacy button: hold handling failed")

    def _post(self, event: ButtonEvent) -> None:
        try:
            self._loop.call_soon_threadsafe(self._dispatch, event)
        except RuntimeError:
            # The loop is closed: the daemon is gone, and the station boots locked anyway.
            _log.warning("privacy button %s after the event loop closed", event.value)

    # -- the loop ------------------------------------------------------------------------

    def _dispatch(self, event: ButtonEvent) -> None:
        # Runs even after close(): a lock request already on its way is never dropped.
        if event is ButtonEvent.LOCK:
            with self._lock:
                self._lock_pending = False
        handler = self.on_press if event is ButtonEvent.LOCK else self.on_long_press
        if handler is None:
            return
        try:
            result = handler()
            if inspect.isawaitable(result):
                task = asyncio.ensure_future(result)
                self._handler_tasks.add(task)
                task.add_done_callback(self._handler_done)
        except Exception:
            _log.exception("privacy button: %s handler failed", event.value)

    def _handler_done(self, task: asyncio.Future[Any]) -> None:
        self._handler_tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            _log.error("privacy button handler failed", exc_info=task.exception())

    # -- state and shutdown ---------------------------------------------------------------

    @property
    def pin(self) -> Any:
        """The gpiozero pin (a ``MockPin`` in tests and the demo: ``drive_low()`` presses)."""
        return self._button.pin

    @property
    def is_pressed(self) -> bool:
        """True while the button is held down (reads the pin)."""
        if self._closed:
            raise GpioUnavailableError("privacy button is closed")
        return bool(self._button.is_pressed)

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._closed

    def close(self) -> None:
        """Release the pin and gpiozero's hold thread. Idempotent."""
        if self._closed:
            return
        self._closed = True
        self._button.close()

    async def aclose(self) -> None:
        """:meth:`close` off the loop (gpiozero joins its hold thread, up to 0.1 s)."""
        await asyncio.to_thread(self.close)
