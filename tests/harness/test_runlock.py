"""Per-run lock files: one winner among racing processes, live claims respected, stale claims of
dead processes (SIGKILL included) taken over by exactly one process.

Processes are forked (they only make file-system calls). Races start from a shared barrier;
the assertions count winners, so they hold for any interleaving.
"""

from __future__ import annotations

import multiprocessing as mp
import os
import signal
import socket

import pytest

from mv2d_bench.harness.runlock import Busy, RunLock, is_held, read_owner

RACERS = 6


def _hold(path, ready, stop) -> None:
    lock = RunLock.acquire(path, "holder")
    ready.set()
    stop.wait(60)
    lock.release()


def _hold_and_die(path, ready) -> None:
    RunLock.acquire(path, "dies")
    ready.set()
    os.kill(os.getpid(), signal.SIGKILL)  # no release, no cleanup: the kernel drops the flock


def _race(path, barrier, results) -> None:
    barrier.wait(60)
    try:
        lock = RunLock.acquire(path, "racer")
    except Busy:
        lock = None
        results.put(("busy", os.getpid(), None))
    else:
        took = lock.took_over.pid if lock.took_over else None
        results.put(("won", os.getpid(), took))
    barrier.wait(60)  # the winner holds its claim until every racer has tried
    if lock is not None:
        lock.release()


@pytest.fixture
def ctx():
    return mp.get_context("fork")


def test_a_live_claim_is_busy_and_names_its_owner(tmp_path, ctx):
    path = tmp_path / "locks" / "run.lock"
    ready, stop = ctx.Event(), ctx.Event()
    holder = ctx.Process(target=_hold, args=(path, ready, stop))
    holder.start()
    assert ready.wait(60)
    try:
        with pytest.raises(Busy) as err:
            RunLock.acquire(path)
        assert err.value.owner.pid == holder.pid and err.value.owner.host == socket.gethostname()
        assert is_held(path) and read_owner(path).command == "holder"
    finally:
        stop.set()
        holder.join(60)
    assert not path.exists() and not is_held(path)  # released: the file is gone
    with RunLock.acquire(path) as lock:
        assert lock.took_over is None and read_owner(path).pid == os.getpid()


def test_the_claim_of_a_killed_process_is_taken_over(tmp_path, ctx):
    path = tmp_path / "run.lock"
    ready = ctx.Event()
    dead = ctx.Process(target=_hold_and_die, args=(path, ready))
    dead.start()
    dead.join(60)
    assert dead.exitcode == -signal.SIGKILL and path.exists()
    assert read_owner(path).pid == dead.pid and not is_held(path)  # stale
    lock = RunLock.acquire(path)
    assert lock.took_over is not None and lock.took_over.pid == dead.pid
    assert read_owner(path).pid == os.getpid() and is_held(path)  # held: by us
    lock.release()
    assert not path.exists()


@pytest.mark.parametrize("stale", [False, True], ids=["fresh", "stale"])
def test_racing_processes_give_exactly_one_winner(tmp_path, ctx, stale):
    path = tmp_path / "run.lock"
    dead_pid = None
    if stale:
        ready = ctx.Event()
        dead = ctx.Process(target=_hold_and_die, args=(path, ready))
        dead.start()
        dead.join(60)
        dead_pid = dead.pid
    barrier, results = ctx.Barrier(RACERS), ctx.Queue()
    racers = [ctx.Process(target=_race, args=(path, barrier, results)) for _ in range(RACERS)]
    for p in racers:
        p.start()
    outcomes = [results.get(timeout=60) for _ in racers]
    for p in racers:
        p.join(60)
    winners = [o for o in outcomes if o[0] == "won"]
    assert len(winners) == 1, outcomes
    assert winners[0][2] == dead_pid  # the stale claim was taken over by the one winner only
    assert sum(o[0] == "busy" for o in outcomes) == RACERS - 1
    assert not path.exists()
