"""Running the planned runs of a suite: claims, worker processes, failures, interruption.

For each pending run the suite

1. claims it with its lock file (:mod:`~mv2d_bench.harness.runlock`); a run claimed by another
   live process is left to it (and waited for at the end, unless ``wait=False``); a stale claim
   of a dead process is taken over;
2. checks again that no record of it appeared meanwhile (another process may have finished it);
3. runs it in a worker process (:mod:`~mv2d_bench.harness.workers`) with a checkpoint of its
   own in ``OUT/checkpoints``, so that an interrupted run resumes where it stopped;
4. on success removes the checkpoint and any failure record of an earlier attempt; on failure
   (any exception, or a worker that died) writes the traceback to ``OUT/logs/<run>.failed.log``
   and a failure record ``OUT/<run>.failed.json`` (see :mod:`~mv2d_bench.harness.suite_out`),
   and goes on with the other runs;
5. releases the claim.

Ctrl-C (or SIGTERM) stops the workers, keeps their last checkpoints, releases every claim and
ends with :class:`Interrupted`; nothing half-written is left in ``OUT`` (records, failure
records and checkpoints are all written to a temporary file and renamed).
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mv2d_bench.harness.runlock import Busy, Owner, RunLock
from mv2d_bench.harness.suite_out import (
    FAILURE_SUFFIX,
    OutIndex,
    failure_record,
    read_attempts,
    run_stem,
)

POLL_SECONDS = 0.5


TORCHRUN_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK",
                "ROLE_RANK", "MASTER_ADDR", "MASTER_PORT")  # fmt: skip


def run_in_worker(config: Any, out_dir: str, checkpoint: str) -> tuple[str, float, list[str]]:
    """What a worker process executes for one run: (record path, seconds, notes).

    A suite's runs are single-process: a suite started under torchrun leaves the process
    group to ``mv2d-bench run`` (every rank's suite then shares the runs through the locks).
    A checkpoint that cannot be resumed (unreadable, another format, another run's) is moved
    aside and the run starts afresh; the trainer removes temporary files of interrupted
    checkpoint writes and resumes the rest (other thread or device settings included)."""
    from mv2d_bench.harness.runner import run

    for name in TORCHRUN_ENV:
        os.environ.pop(name, None)
    notes = _usable_checkpoint(Path(checkpoint), config)
    t0 = time.perf_counter()
    path = run(config, out_dir, checkpoint=checkpoint)
    return str(path), time.perf_counter() - t0, notes


def _usable_checkpoint(path: Path, config: Any) -> list[str]:
    """Move aside a checkpoint the trainer would refuse on every attempt: unreadable, of
    another checkpoint format, or of another run (the trainer checks the rest)."""
    from mv2d_bench.config import run_key
    from mv2d_bench.harness.checkpoints import FORMAT, load_checkpoint
    from mv2d_bench.harness.suite_out import move_aside

    if not path.is_file():
        return []
    try:
        state = load_checkpoint(path)
    except ValueError as exc:
        why = f"unreadable ({exc})"
    else:
        if state.get("format") == FORMAT and state.get("run_key") == run_key(config.to_dict()):
            return []
        why = "of another checkpoint format or another run"
    aside = move_aside(path)
    return [f"its checkpoint {path} was {why}; moved aside to {aside} and started afresh"]


@dataclass
class RunFiles:
    lock: Path
    checkpoint: Path
    failure: Path
    error_log: Path

    @classmethod
    def of(cls, out: Path, run: Any) -> RunFiles:
        name = run.config.run.objective
        short = run_stem(run.benchmark, name, run.seed, run.key)
        long = run_stem(run.benchmark, name, run.seed, run.key, 16)
        return cls(
            lock=out / "locks" / f"{long}.lock",
            checkpoint=out / "checkpoints" / f"{short}.pt",
            failure=out / f"{long}{FAILURE_SUFFIX}",
            error_log=out / "logs" / f"{short}.failed.log",
        )


@dataclass
class Outcome:
    done: list[tuple[Any, Path, float]] = field(default_factory=list)
    failed: list[tuple[Any, str, Path]] = field(default_factory=list)
    """(run, error line, failure record)."""
    elsewhere: list[Any] = field(default_factory=list)
    """Runs another process recorded while this suite ran."""
    left: list[tuple[Any, Owner]] = field(default_factory=list)
    """Runs still claimed by another live process when this suite stopped waiting."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM stopped the suite; ``outcome`` is what happened until then."""

    def __init__(self, outcome: Outcome, running: list[Any], not_started: list[Any]) -> None:
        super().__init__("interrupted")
        self.outcome = outcome
        self.running = running
        self.not_started = not_started


def label(run: Any) -> str:
    return f"{run.benchmark}/{run.setting} seed {run.seed}"


def describe_exit(code: int | None) -> str:
    if code is None:
        return "no exit status"
    if code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"killed by {name}"
    return f"exit status {code}"


class SuiteExecutor:
    def __init__(
        self,
        out: Path,
        index: OutIndex,
        jobs: int,
        say: Callable[[str], None],
        *,
        wait: bool = True,
        command: str | None = None,
        worker_fn: Callable[..., Any] = run_in_worker,
    ) -> None:
        self.out = out
        self.index = index
        self.jobs = jobs
        self.say = say
        self.wait = wait
        self.command = command
        self.worker_fn = worker_fn
        self.outcome = Outcome()
        self._held: dict[str, RunLock] = {}
        self._runs: dict[str, Any] = {}
        self._waiting: dict[str, tuple[Any, Owner]] = {}
        self._announced: set[str] = set()

    # -- the loop -----------------------------------------------------------------------------
    def execute(self, pending: list[Any]) -> Outcome:
        if not pending:
            return self.outcome
        queue = deque(pending)
        previous = signal.signal(signal.SIGTERM, _raise_interrupt)
        pool = None
        try:
            from mv2d_bench.harness.workers import WorkerPool

            pool = WorkerPool(min(self.jobs, len(pending)), self.worker_fn)
            while queue or pool.running or self._waiting:
                while pool.idle and queue:
                    self._claim(queue.popleft(), pool)
                if pool.idle and not queue and self._waiting:
                    if not self.wait and not pool.running:
                        break
                    for key in list(self._waiting):
                        if pool.idle:
                            run, _ = self._waiting.pop(key)
                            self._claim(run, pool)
                if pool.running:
                    event = pool.next_event(timeout=POLL_SECONDS if self._waiting else None)
                    if event is not None:
                        self._finished(event)
                elif self._waiting:
                    self._announce_wait()
                    time.sleep(POLL_SECONDS)
            self.outcome.left = list(self._waiting.values())
            pool.close()
        except KeyboardInterrupt:
            signal.signal(signal.SIGINT, signal.SIG_IGN)  # a second Ctrl-C must not cut cleanup
            try:
                running = [self._runs[k] for k in (pool.running if pool else [])]
                if pool is not None:
                    pool.terminate()
                not_started = list(queue) + [r for r, _ in self._waiting.values()]
            finally:
                self._release_all()
                signal.signal(signal.SIGINT, signal.default_int_handler)
            raise Interrupted(self.outcome, running, not_started) from None
        finally:
            signal.signal(signal.SIGTERM, previous)
            if pool is not None:
                pool.terminate()
            self._release_all()
        return self.outcome

    def _announce_wait(self) -> None:
        owners = {o.describe() for _, o in self._waiting.values()}
        text = "; ".join(sorted(owners))
        if text not in self._announced:
            self._announced.add(text)
            self.say(
                f"waiting for {len(self._waiting)} run(s) claimed by another process ({text}); "
                "they are taken over if it dies"
            )

    # -- one run ------------------------------------------------------------------------------
    def _claim(self, run: Any, pool: Any) -> None:
        files = RunFiles.of(self.out, run)
        try:
            lock = RunLock.acquire(files.lock, self.command)
        except OSError as exc:  # the lock cannot be made (a folder in its place, a full disk)
            message = f"cannot claim the run: {exc.filename or files.lock}: {exc.strerror or exc}"
            self._failed(run, files, {"type": type(exc).__name__, "message": message})
            return
        except Busy as busy:
            if run.key not in self._announced:
                self._announced.add(run.key)
                self.say(f"skip {label(run)} for now: claimed by {busy.owner.describe()}")
            self._waiting[run.key] = (run, busy.owner)
            return
        for problem in self.index.refresh():
            self.say(f"warning: {problem}")
        if run.key in self.index.records:
            lock.release()
            self.outcome.elsewhere.append(run)
            self.say(f"done {label(run)} by another process -> {self.index.records[run.key]}")
            return
        if lock.took_over is not None:
            self.say(f"took over {label(run)}: its claim by {lock.took_over.describe()} is stale")
        files.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        self._held[run.key] = lock
        self._runs[run.key] = run
        pool.submit(run.key, run.config, str(self.out), str(files.checkpoint))

    def _finished(self, event: Any) -> None:
        run = self._runs[event.task]
        files = RunFiles.of(self.out, run)
        try:
            if event.kind == "ok":
                path, secs, notes = event.value
                for note in notes:
                    self.say(f"note: {label(run)}: {note}")
                self._succeeded(run, files, Path(path), secs)
            else:
                error = event.value if event.kind == "error" else _died(event.value)
                self._failed(run, files, error)
        finally:
            lock = self._held.pop(run.key, None)
            if lock is not None:
                lock.release()

    def _succeeded(self, run: Any, files: RunFiles, path: Path, secs: float) -> None:
        with contextlib.suppress(FileNotFoundError):
            files.checkpoint.unlink()
        old = self.index.failures.get(run.key)
        for stale in {files.failure, old} - {None}:
            with contextlib.suppress(FileNotFoundError):
                stale.unlink()  # our own failure record of an earlier attempt
        self.outcome.done.append((run, path, secs))
        try:
            rec = json.loads(path.read_text(encoding="utf-8"))
            acc = rec["metrics"].get("accuracy")
        except (OSError, ValueError, KeyError, AttributeError):
            acc = None
        shown = f"accuracy {acc:.2f}" if isinstance(acc, (int, float)) else "done"
        self.say(f"done {label(run)}: {shown} ({secs:.1f} s) -> {path}")

    def _failed(self, run: Any, files: RunFiles, error: dict[str, Any]) -> None:
        from mv2d_bench.leaderboards.records import atomic_write_text

        line = f"{error.get('type', 'Error')}: {error.get('message', '')}".strip()
        line = " ".join(line.split())
        attempts = read_attempts(self.index.failures.get(run.key) or _existing(files.failure)) + 1
        log_text = (
            f"{label(run)} (run key {run.key}), attempt {attempts}\n"
            f"{error.get('traceback') or line}\n"
        )
        atomic_write_text(files.error_log, log_text)
        record = failure_record(
            key=run.key,
            benchmark=run.benchmark,
            setting=run.setting,
            objective=run.config.run.objective,
            seed=run.seed,
            error=error,
            log=os.path.relpath(files.error_log, self.out),
            config=run.config.to_dict(),
            attempts=attempts,
            checkpoint=(
                os.path.relpath(files.checkpoint, self.out) if files.checkpoint.is_file() else None
            ),
        )
        atomic_write_text(files.failure, json.dumps(record, indent=2, sort_keys=True) + "\n")
        self.outcome.failed.append((run, line, files.failure))
        self.say(f"failed {label(run)}: {line} (traceback: {files.error_log})")

    def _release_all(self) -> None:
        for lock in self._held.values():
            lock.release()
        self._held.clear()


def _existing(path: Path) -> Path | None:
    return path if path.is_file() else None


def _died(code: int | None) -> dict[str, Any]:
    text = f"the worker process running it died ({describe_exit(code)})"
    return {"type": "WorkerDied", "message": text, "traceback": text}


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def interrupted_line(exc: Interrupted, out: Path) -> str:
    o = exc.outcome
    parts = [f"{len(o.done)} run(s) finished"]
    if exc.running:
        parts.append(f"{len(exc.running)} stopped (their checkpoints are kept)")
    if exc.not_started:
        parts.append(f"{len(exc.not_started)} not started")
    if o.failed:
        parts.append(f"{len(o.failed)} failed")
    return f"interrupted: {', '.join(parts)}; re-run the same command to resume (records in {out})"
