"""Where a run ran, precisely enough to trace differences between machines.

The same run (code, config, data, seed, one thread) is bitwise repeatable on one machine but
not across machines: BLAS kernels chosen for a CPU round differently, training amplifies it and
best-validation selection on a small test set can move a result by points. A run record
therefore names (``environment``):

* ``cpu``: the CPU model (``/proc/cpuinfo``'s "model name" on Linux, ``sysctl`` on macOS, else
  ``platform.processor()``), null when unknown;
* ``cpu_capability``: the SIMD level torch dispatches to,
  ``torch.backends.cpu.get_cpu_capability()``
  (e.g. "AVX512", "AVX2", "DEFAULT");
* ``blas``: the BLAS torch was built with and its version line from ``torch.__config__.show()``
  (e.g. "mkl: Intel(R) oneAPI Math Kernel Library Version 2024.2-Product Build ..."), null when
  unknown;
* ``cuda_device``: the CUDA device's name when the run used one, else null.
"""

from __future__ import annotations

import platform
import re
import subprocess
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def cpu_model() -> str | None:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip() or None
    except OSError:
        pass
    if platform.system() == "Darwin":
        try:
            out = subprocess.run(
                ["sysctl", "-n", "machdep.cpu.brand_string"],
                capture_output=True,
                text=True,
                timeout=5,
            )
            if out.returncode == 0 and out.stdout.strip():
                return out.stdout.strip()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or None


def cpu_capability() -> str | None:
    import torch

    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return None


@lru_cache(maxsize=1)
def blas() -> str | None:
    """``"<BLAS_INFO>: <the library's version line>"`` from torch's build configuration."""
    import torch

    try:
        config = torch.__config__.show()
    except (AttributeError, RuntimeError):
        return None
    info = re.search(r"BLAS_INFO=([A-Za-z0-9_+.-]+)", config)
    name = info.group(1) if info else None
    detail = None
    for line in config.splitlines():
        text = line.strip().lstrip("- ").strip()
        if re.search(r"Math Kernel Library|OpenBLAS|BLIS|Accelerate|ArmPL", text, re.I):
            detail = text
            break
    if name and detail:
        return f"{name}: {detail}"
    return name or detail


def cuda_device(device: str) -> str | None:
    import torch

    if not device.startswith("cuda") or not torch.cuda.is_available():
        return None
    return torch.cuda.get_device_name(torch.device(device))


def machine_info(device: str) -> dict[str, Any]:
    """The ``environment`` fields above for a run on ``device``."""
    return {
        "cpu": cpu_model(),
        "cpu_capability": cpu_capability(),
        "blas": blas(),
        "cuda_device": cuda_device(device),
    }
