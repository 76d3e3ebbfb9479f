"""``python -m mv2d_bench`` is the same command as the ``mv2d-bench`` console script."""

import subprocess
import sys

from mv2d_bench import __version__


def test_python_m_version():
    out = subprocess.run(
        [sys.executable, "-m", "mv2d_bench", "--version"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert out.stdout.strip() == f"mv2d-bench {__version__}"


def test_python_m_unknown_command_exits_2():
    out = subprocess.run(
        [sys.executable, "-m", "mv2d_bench", "no-such-command"], capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "invalid choice" in out.stderr
