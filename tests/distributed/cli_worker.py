"""One torchrun process of ``mv2d-bench`` that also records the files it writes.

``python -m torch.distributed.run ... cli_worker.py AUDIT WATCH -- ARGS...`` runs
``mv2d_bench.cli.main(ARGS)`` and writes ``AUDIT/rank-<RANK>.json``: every path under WATCH that
this process opened for writing, created, renamed or removed (Python audit events, so nothing
escapes: ``open``, ``os.open``, ``tempfile``, ``os.replace``, ``os.remove``, ``os.mkdir``).
"""

from __future__ import annotations

import json
import os
import sys

WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def main() -> int:
    audit, watch = sys.argv[1], os.path.realpath(sys.argv[2])
    argv = sys.argv[sys.argv.index("--") + 1 :]
    writes: list[list[str]] = []

    def under(path) -> bool:
        try:
            return os.path.realpath(os.fsdecode(path)).startswith(watch)
        except (TypeError, ValueError):
            return False

    def hook(event: str, args: tuple) -> None:
        if event == "open":
            path, mode, flags = args
            writing = (mode is not None and any(c in str(mode) for c in "wax+")) or (
                mode is None and isinstance(flags, int) and flags & WRITE_FLAGS
            )
            if writing and under(path):
                writes.append([event, os.fsdecode(path)])
        elif event in ("os.rename", "os.remove", "os.mkdir", "os.rmdir", "os.truncate"):
            if under(args[0]) or (event == "os.rename" and under(args[1])):
                writes.append([event, os.fsdecode(args[0])])

    sys.addaudithook(hook)
    from mv2d_bench.cli import main as cli_main

    rc = cli_main(argv)
    done = list(writes)  # before this report is written
    rank = os.environ.get("RANK", "0")
    with open(os.path.join(audit, f"rank-{rank}.json"), "w", encoding="utf-8") as f:
        json.dump({"rc": rc, "writes": done}, f)
    return rc


if __name__ == "__main__":
    sys.exit(main())
