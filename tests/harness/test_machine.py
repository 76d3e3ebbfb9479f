"""Run records say where they ran: CPU model, torch's CPU capability, BLAS, CUDA device."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

from mv2d_bench.harness.machine import blas, cpu_capability, cpu_model, cuda_device, machine_info
from mv2d_bench.leaderboards.records import check_record, environment


def test_cpu_facts_come_from_the_system_and_torch():
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        names = [
            line.split(":", 1)[1].strip()
            for line in cpuinfo.read_text(errors="replace").splitlines()
            if line.lower().startswith("model name")
        ]
        if names:
            assert cpu_model() == names[0]
    assert cpu_capability() == torch.backends.cpu.get_cpu_capability()
    info = re.search(r"BLAS_INFO=(\S+?),", torch.__config__.show())
    if info:
        assert blas().startswith(info.group(1))
    assert cuda_device("cpu") is None


def test_environment_fields_are_in_the_record_schema():
    env = environment("cpu")
    assert {"cpu", "cpu_capability", "blas", "cuda_device"} <= set(env)
    assert env["cpu_capability"] == torch.backends.cpu.get_cpu_capability()
    assert machine_info("cpu")["cuda_device"] is None
    from mv2d_bench.leaderboards.testing import mvc_record

    rec = mvc_record()
    rec["environment"].update(env)
    from mv2d_bench.leaderboards.records import finalize

    assert check_record(finalize(rec)) == []


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
def test_cuda_device_name_is_recorded():
    assert cuda_device("cuda:0") == torch.cuda.get_device_name(0)
