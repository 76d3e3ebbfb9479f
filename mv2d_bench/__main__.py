"""``python -m mv2d_bench``: the ``mv2d-bench`` command (also for ``torchrun -m mv2d_bench`` and
environments without the console script on PATH)."""

import sys

from mv2d_bench.cli import main

if __name__ == "__main__":
    sys.exit(main())
