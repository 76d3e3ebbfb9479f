"""mv2d-bench: information-bottleneck objectives for multi-view learning, benchmarked."""

from __future__ import annotations

from importlib import metadata

try:
    __version__ = metadata.version("mv2d-bench")
except metadata.PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"
