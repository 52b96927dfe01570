"""What machine a figure was measured on: every bench records it (CPU model, cores, the
instruction sets that change the speed of the models), since the machines this project runs on
differ in CPU from run to run."""
from __future__ import annotations

import os
import platform
from pathlib import Path
from typing import Any, Dict, Optional, Set

# Flags that change how fast TensorFlow, ONNX Runtime and TFLite run here.
SPEED_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx512_bf16", "amx_bf16", "amx_int8")


def _cpuinfo() -> str:
    try:
        return Path("/proc/cpuinfo").read_text()
    except OSError:
        return ""


def cpu_flags() -> Set[str]:
    """The instruction-set flags the kernel reports for this CPU (empty where unknown)."""
    for line in _cpuinfo().splitlines():
        if line.startswith(("flags", "Features")):
            return set(line.split(":", 1)[1].split())
    return set()


def cpu_model() -> str:
    for line in _cpuinfo().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity where the OS tells it)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def pin_to_one_core() -> Optional[int]:
    """Pin this process to one CPU (the last it may use) and native thread pools to one thread,
    as the benches measure; returns the CPU, or None where the OS cannot pin."""
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:
        pass
    if hasattr(os, "sched_setaffinity"):
        cpu = sorted(os.sched_getaffinity(0))[-1]
        os.sched_setaffinity(0, {cpu})
        return cpu
    return None


def rss_mb(pid: Optional[int] = None) -> Optional[float]:
    """Resident memory of a process (default: this one) in MB (Linux /proc), None when it cannot be read."""
    try:
        for line in Path(f"/proc/{pid or os.getpid()}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return round(int(line.split()[1]) / 1024.0, 1)
    except OSError:
        return None
    return None


def machine() -> Dict[str, Any]:
    """CPU model, cores this process may use, and the speed-relevant instruction sets."""
    flags = cpu_flags()
    return {"cpu": cpu_model(), "cores": usable_cores(), "machine_cores": os.cpu_count(),
            "flags": [flag for flag in SPEED_FLAGS if flag in flags]}
