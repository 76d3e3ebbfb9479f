"""Per-run lock files: two processes never run the same run into one folder.

A run is claimed by creating its lock file with ``O_CREAT | O_EXCL`` (atomic: one creator
wins) holding the owner's pid, host and start time as JSON. The owner also holds an exclusive
``flock`` on the file for as long as it runs; the kernel drops that lock when the process ends,
however it ends (SIGKILL included), so a lock file whose flock can be taken belongs to a dead
process: it is *stale*, and whoever takes the flock first takes the claim over by rewriting the
owner in place (same file, no unlink-and-recreate race). The release unlinks the file while
still holding the flock; a process that opened the old file meanwhile sees that its inode is no
longer the path's and tries again.

Where ``flock`` is not supported (some network file systems), a lock is stale when its owner
ran on this host and that pid is gone; locks of other hosts are then never taken over.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any

try:
    import fcntl
except ImportError:  # pragma: no cover - not POSIX
    fcntl = None  # type: ignore[assignment]

NO_FLOCK = {errno.ENOLCK, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS}


@dataclass
class Owner:
    """Who holds (or held) a lock, as written in the lock file."""

    pid: int | None
    host: str | None
    started: str | None
    command: str | None = None

    @classmethod
    def read(cls, text: str) -> Owner:
        try:
            data = json.loads(text) if text.strip() else {}
        except json.JSONDecodeError:
            data = {}
        if not isinstance(data, dict):
            data = {}
        pid = data.get("pid")
        return cls(
            pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
            data.get("host") if isinstance(data.get("host"), str) else None,
            data.get("started") if isinstance(data.get("started"), str) else None,
            data.get("command") if isinstance(data.get("command"), str) else None,
        )

    def describe(self) -> str:
        pid = self.pid if self.pid is not None else "?"
        return f"pid {pid} on {self.host or 'an unknown host'}" + (
            f" since {self.started}" if self.started else ""
        )


def _me(command: str | None) -> dict[str, Any]:
    return {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "command": command,
    }


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


class Busy(Exception):
    """The run is claimed by a live process (``owner``)."""

    def __init__(self, path: Path, owner: Owner) -> None:
        super().__init__(f"{path}: claimed by {owner.describe()}")
        self.path = path
        self.owner = owner


class RunLock:
    """A held claim on one run (see the module doc). Use :meth:`acquire`; :meth:`release`
    (or the context manager) gives it up and removes the file."""

    def __init__(self, path: Path, fd: int, took_over: Owner | None) -> None:
        self.path = path
        self.fd: int | None = fd
        self.took_over = took_over
        """The dead owner whose stale lock this claim replaced (None: a fresh claim)."""

    # -- acquiring ------------------------------------------------------------------------------
    @classmethod
    def acquire(cls, path: str | os.PathLike, command: str | None = None) -> RunLock:
        """Claim ``path``; raise :class:`Busy` when a live process holds it."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        info = json.dumps(_me(command)) + "\n"
        for _ in range(100):  # each retry means the file changed hands under us
            try:
                fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR | os.O_CLOEXEC, 0o644)
            except FileExistsError:
                lock = cls._take_existing(path, info)
                if lock is not None:
                    return lock
                continue
            try:
                locked = _try_flock(fd)
            except _NoFlock:
                locked = True  # pid-based claims only (see the module doc)
            if not locked:
                # another process took our fresh file for a stale one in the instant before
                # our flock: it owns the claim now
                owner = Owner.read(_read_fd(fd))
                os.close(fd)
                raise Busy(path, owner)
            _write_fd(fd, info)
            return cls(path, fd, None)
        raise OSError(f"{path}: the lock file kept changing hands; expected to claim it")

    @classmethod
    def _take_existing(cls, path: Path, info: str) -> RunLock | None:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except FileNotFoundError:
            return None  # released meanwhile: try to create it again
        try:
            got = _try_flock(fd)
        except _NoFlock:
            return cls._take_by_pid(path, fd, info)
        if not got:
            owner = Owner.read(_read_fd(fd))
            os.close(fd)
            raise Busy(path, owner)
        if not _same_file(fd, path):
            os.close(fd)  # the file we locked was released and unlinked: start over
            return None
        old = Owner.read(_read_fd(fd))  # flock free: its owner is gone
        _write_fd(fd, info)
        return cls(path, fd, old)

    @classmethod
    def _take_by_pid(cls, path: Path, fd: int, info: str) -> RunLock | None:
        owner = Owner.read(_read_fd(fd))
        os.close(fd)
        here = socket.gethostname()
        if owner.pid is None or owner.host != here or pid_alive(owner.pid):
            raise Busy(path, owner)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)  # a dead owner on this host; recreate with O_EXCL
        return None

    # -- releasing ------------------------------------------------------------------------------
    def release(self) -> None:
        if self.fd is None:
            return
        try:
            if _same_file(self.fd, self.path):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(self.path)
        finally:
            os.close(self.fd)
            self.fd = None

    def __enter__(self) -> RunLock:
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


def read_owner(path: str | os.PathLike) -> Owner | None:
    """The owner written in a lock file (None when there is no such file)."""
    try:
        return Owner.read(Path(path).read_text(encoding="utf-8", errors="replace"))
    except FileNotFoundError:
        return None


def is_held(path: str | os.PathLike) -> bool:
    """True when a live process holds the lock at ``path`` (nothing is changed)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return False
    try:
        try:
            got = _try_flock(fd, shared=True)
        except _NoFlock:
            owner = Owner.read(_read_fd(fd))
            return owner.pid is not None and (
                owner.host != socket.gethostname() or pid_alive(owner.pid)
            )
        if got:
            fcntl.flock(fd, fcntl.LOCK_UN)
        return not got
    finally:
        os.close(fd)


class _NoFlock(Exception):
    pass


def _try_flock(fd: int, shared: bool = False) -> bool:
    if fcntl is None:
        raise _NoFlock()
    try:
        fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    except OSError as exc:
        if exc.errno in NO_FLOCK:
            raise _NoFlock() from exc
        raise
    return True


def _same_file(fd: int, path: Path) -> bool:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return False
    mine = os.fstat(fd)
    return (st.st_dev, st.st_ino) == (mine.st_dev, mine.st_ino)


def _read_fd(fd: int) -> str:
    os.lseek(fd, 0, os.SEEK_SET)
    chunks = []
    while chunk := os.read(fd, 65536):
        chunks.append(chunk)
    return b"".join(chunks).decode("utf-8", errors="replace")


def _write_fd(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.lseek(fd, 0, os.SEEK_SET)
    os.write(fd, text.encode("utf-8"))
    os.fsync(fd)
