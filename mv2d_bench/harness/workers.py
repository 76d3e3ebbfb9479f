"""Worker processes for suites: every run executes in a process of its own that dies with the
suite.

* A worker asks the kernel to SIGKILL it when its parent ends (``prctl(PR_SET_PDEATHSIG)`` on
  Linux, through ctypes) and also checks every second that its parent is still the process that
  started it (everywhere; this also covers a parent that died before the ``prctl``). A suite
  killed with SIGKILL therefore leaves no worker behind.
* Workers ignore SIGINT: Ctrl-C reaches the whole process group, and the suite decides (it stops
  the workers itself, see :meth:`WorkerPool.terminate`).
* Whatever a run raises (a plugin's ``ZeroDivisionError``, ``SystemExit``) comes back as an
  ``"error"`` event with its traceback; a worker that dies (a crash in native code,
  ``os._exit``, the OOM killer) comes back as a ``"died"`` event for its run, and a fresh
  worker takes its place. One run's failure never stops the others.

Workers are started with the ``spawn`` method (no inherited torch threads or open files) and live
for the whole suite, so torch is imported once per worker, not once per run.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
import threading
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from typing import Any

PR_SET_PDEATHSIG = 1
PARENT_CHECK_SECONDS = 1.0
STOP_GRACE_SECONDS = 10.0


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` (its parent) ends (see the module doc)."""
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
    if os.getppid() != parent_pid:
        os._exit(1)

    def watch() -> None:
        while True:
            time.sleep(PARENT_CHECK_SECONDS)
            if os.getppid() != parent_pid:
                os._exit(1)

    threading.Thread(target=watch, name="parent-watch", daemon=True).start()


def _worker_main(conn: Connection, parent_pid: int, fn: Callable[..., Any]) -> None:
    die_with_parent(parent_pid)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    with contextlib.suppress(ImportError):
        # tqdm's default lock is a named multiprocessing semaphore, which a worker that dies
        # would leak (and the resource tracker warn about); one process needs a thread lock only
        from tqdm import tqdm

        tqdm.set_lock(threading.RLock())
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the suite went away
        if message is None:
            return
        task_id, args = message
        try:
            reply = (task_id, "ok", fn(*args))
        except BaseException as exc:  # noqa: BLE001 - a run may fail in any way; report it
            reply = (
                task_id,
                "error",
                {
                    "type": type(exc).__name__,
                    "message": str(exc),
                    "traceback": traceback.format_exc(),
                },
            )
        try:
            conn.send(reply)
        except (OSError, ValueError):
            return


@dataclass(eq=False)
class _Worker:
    process: Any
    conn: Connection
    task: Any = None


@dataclass
class Event:
    task: Any
    kind: str
    """``"ok"`` (``value`` is what the function returned), ``"error"`` (``value``: type,
    message, traceback) or ``"died"`` (``value``: the exit code; negative = the signal)."""
    value: Any


class WorkerPool:
    """``jobs`` worker processes running ``fn(*args)`` for each submitted task."""

    def __init__(self, jobs: int, fn: Callable[..., Any]) -> None:
        self._ctx = mp.get_context("spawn")
        self._fn = fn
        self._idle: list[_Worker] = []
        self._busy: list[_Worker] = []
        for _ in range(jobs):
            self._idle.append(self._start())

    def _start(self) -> _Worker:
        mine, theirs = self._ctx.Pipe()
        proc = self._ctx.Process(
            target=_worker_main,
            args=(theirs, os.getpid(), self._fn),
            name="mv2d-bench-suite-worker",
        )
        proc.start()
        theirs.close()
        return _Worker(proc, mine)

    @property
    def idle(self) -> int:
        return len(self._idle)

    @property
    def running(self) -> list[Any]:
        return [w.task for w in self._busy]

    def pids(self) -> list[int]:
        return [w.process.pid for w in self._idle + self._busy if w.process.pid is not None]

    def submit(self, task: Any, *args: Any) -> None:
        worker = self._idle.pop()
        try:
            worker.conn.send((task, args))
        except (OSError, ValueError):  # it died while idle: replace it and retry once
            self._reap(worker)
            worker = self._start()
            worker.conn.send((task, args))
        worker.task = task
        self._busy.append(worker)

    def next_event(self, timeout: float | None = None) -> Event | None:
        """The next finished task (None when none finished within ``timeout`` seconds or none
        is running)."""
        if not self._busy:
            return None
        handles = {}
        for w in self._busy:
            handles[w.conn] = w
            handles[w.process.sentinel] = w
        for handle in wait(list(handles), timeout):
            worker = handles[handle]
            if worker not in self._busy:
                continue
            message = None
            if handle is worker.conn or worker.conn.poll():
                try:
                    message = worker.conn.recv()
                except (EOFError, OSError):
                    message = None
            self._busy.remove(worker)
            task, worker.task = worker.task, None
            if message is not None:
                self._idle.append(worker)
                _, kind, value = message
                return Event(task, kind, value)
            code = self._reap(worker)
            self._idle.append(self._start())
            return Event(task, "died", code)
        return None

    def _reap(self, worker: _Worker) -> int | None:
        worker.process.join(STOP_GRACE_SECONDS)
        if worker.process.exitcode is None:
            worker.process.kill()
            worker.process.join()
        with contextlib.suppress(OSError):
            worker.conn.close()
        return worker.process.exitcode

    def close(self) -> None:
        """Stop idle workers (after the last task); running ones are terminated."""
        for w in self._idle:
            with contextlib.suppress(OSError, ValueError):
                w.conn.send(None)
        self.terminate()

    def terminate(self) -> None:
        """Stop every worker now: SIGTERM to running ones, then SIGKILL after a grace period.
        A run stopped this way keeps its last checkpoint (written atomically at epoch ends)."""
        for w in self._busy:
            with contextlib.suppress(OSError):
                w.process.terminate()
        deadline = time.monotonic() + STOP_GRACE_SECONDS
        for w in self._idle + self._busy:
            w.process.join(max(0.0, deadline - time.monotonic()))
            if w.process.exitcode is None:
                w.process.kill()
                w.process.join()
            with contextlib.suppress(OSError):
                w.conn.close()
        self._idle, self._busy = [], []
