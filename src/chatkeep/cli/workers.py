"""`chatkeep serve --workers N`: N server processes answering on one listening socket.

The parent binds the port (so a port in use is still one clear line), then forks each worker,
which builds its own app, store connections and event loop and serves the shared socket; the
kernel hands each new connection to one of them. The parent only supervises: it starts a
worker again when one dies, gives up when they keep dying at start, and on SIGTERM or SIGINT
asks every worker to finish (uvicorn's graceful shutdown) and waits for them.

Workers run in a process group of their own, so that a terminal's Ctrl-C reaches the parent
alone and each worker is asked once (a second signal would make uvicorn skip the graceful
part). What each worker must share is in the store: acknowledged means committed, so a read
through any worker sees a create acknowledged by another, and ids stay unique and ordered
(each worker's id generator is reseeded at fork).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import time
from collections.abc import Callable
from types import FrameType
from typing import NoReturn

logger = logging.getLogger("chatkeep")

# A worker that dies this soon after its start counts as failing to start; this many such
# deaths in a row and the parent stops every worker and exits with an error.
QUICK_DEATH_SECONDS = 5.0
MAX_QUICK_DEATHS = 3
_PR_SET_PDEATHSIG = 1  # linux/prctl.h
_STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


class Supervisor:
    """Forks `count` workers running `work(slot)` and keeps them running until stopped;
    `on_death(pid)` is told of each worker that ended."""

    def __init__(
        self,
        count: int,
        work: Callable[[int], None],
        on_death: Callable[[int], None] | None = None,
    ) -> None:
        self._count = count
        self._work = work
        self._on_death = on_death
        self._slots: dict[int, tuple[int, float]] = {}  # pid -> (slot, started)
        self._stopping = False
        self._quick_deaths = 0

    def run(self) -> int:
        """Start the workers and supervise them; the exit status once all have ended."""
        previous = {sig: signal.signal(sig, self._stop) for sig in _STOP_SIGNALS}
        failed = False
        try:
            for slot in range(self._count):
                self._start(slot)
            while self._slots:
                try:
                    pid, status = os.wait()
                except ChildProcessError:
                    break
                slot, started = self._slots.pop(pid, (-1, 0.0))
                if self._on_death is not None:
                    self._on_death(pid)
                if slot < 0 or self._stopping:
                    continue
                failed = self._died(slot, started, status) or failed
                if not self._stopping:
                    self._start(slot)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 1 if failed else 0

    def _start(self, slot: int) -> None:
        # Signals wait until both sides are ready for them: the worker, until it has its
        # own handlers (it would run the parent's `_stop` instead); the parent, until the
        # worker is in `_slots`, where a stop reaches it.
        parent = os.getpid()
        signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
        try:
            pid = os.fork()
            if pid == 0:  # the worker
                self._become_worker(slot, parent)
            self._slots[pid] = (slot, time.monotonic())
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
        if self._stopping:  # asked to stop meanwhile: this one too
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)
            return
        logger.info("worker %d started (pid %d)", slot, pid)

    def _become_worker(self, slot: int, parent: int) -> NoReturn:
        code = 0
        try:
            os.setpgid(0, 0)
            for sig in _STOP_SIGNALS:
                signal.signal(sig, signal.SIG_DFL)  # until uvicorn installs its own
            signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)
            _end_with_parent(parent)
            self._work(slot)
        except BaseException:  # a worker must never return into the parent's loop
            logger.exception("worker %d failed", slot)
            code = 1
        finally:
            logging.shutdown()
            os._exit(code)

    def _died(self, slot: int, started: float, status: int) -> bool:
        """Log an unexpected death; True once workers keep dying at start (then stop)."""
        code = os.waitstatus_to_exitcode(status)
        how = f"exit status {code}" if code >= 0 else f"signal {signal.Signals(-code).name}"
        if time.monotonic() - started < QUICK_DEATH_SECONDS:
            self._quick_deaths += 1
        else:
            self._quick_deaths = 0
        if self._quick_deaths >= MAX_QUICK_DEATHS:
            logger.error(
                "worker %d ended (%s), %d workers in a row at start; stopping",
                slot,
                how,
                MAX_QUICK_DEATHS,
            )
            self._stop_all()
            return True
        logger.warning("worker %d ended unexpectedly (%s); starting it again", slot, how)
        return False

    def _stop(self, signum: int, frame: FrameType | None) -> None:
        # No logging here: the handler may run while the main thread holds a log lock.
        self._stop_all()

    def _stop_all(self) -> None:
        self._stopping = True
        for pid in self._slots:
            with contextlib.suppress(ProcessLookupError):  # ended and not yet waited for
                os.kill(pid, signal.SIGTERM)


def _end_with_parent(parent: int) -> None:
    """On Linux, have the kernel send this worker SIGTERM when the parent dies (even by
    SIGKILL), so that no orphaned worker keeps serving the port; elsewhere, nothing."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):
        return
    if os.getppid() != parent:  # the parent died before the request took effect
        os.kill(os.getpid(), signal.SIGTERM)
