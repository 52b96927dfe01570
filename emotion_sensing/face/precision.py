"""Which arithmetic face training uses, decided by probing this machine, never assumed.

bfloat16 mixed precision (bfloat16 compute, float32 weights) trains vgg8 twice as fast per
image on a CPU with native bfloat16 instructions (AVX-512 BF16 or AMX). Elsewhere it is either
slower (emulated) or impossible: TensorFlow 2.12 without oneDNN's bfloat16 kernels fails with
"Op does not support bfloat16 inputs [Op:FusedBatchNormV3]". So ``auto`` picks bfloat16 only
where three things hold: the network gains from it (measured: vgg8 yes, the depthwise ms
models and mini-Xception no), the CPU reports native bfloat16, and a probe (one training step
of the network under the mixed policy, in a child process) runs. The probe's answer is cached
per TensorFlow version, CPU and network, so it costs its few seconds once per machine.

``EMOBOT_BFLOAT16=unsupported`` makes the probe answer "unsupported" (to test the float32
path on any machine, or to opt out); ``EMOBOT_BFLOAT16=supported`` skips it.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from emotion_sensing.machine import cpu_flags, cpu_model

PRECISIONS = ("auto", "float32", "bfloat16")
# Measured on a CPU with AVX-512 BF16 (models/face_emotion.md): vgg8's dense 3x3 convolutions
# train 2x faster per image; ms_model_M's depthwise ones 235 vs 175 ms a step (slower).
GAINS_FROM_BFLOAT16 = frozenset({"vgg8"})
NATIVE_BFLOAT16_FLAGS = ("avx512_bf16", "amx_bf16")
FORCE_ENV = "EMOBOT_BFLOAT16"
PROBE_TIMEOUT_S = 300


class PrecisionError(ValueError):
    """The requested precision cannot run here; the message is one line saying why."""


@dataclass(frozen=True)
class PrecisionChoice:
    precision: str  # "float32" or "bfloat16"
    reason: str


def native_bfloat16() -> Optional[str]:
    """The CPU flag that gives native bfloat16 arithmetic, or None."""
    flags = cpu_flags()
    return next((flag for flag in NATIVE_BFLOAT16_FLAGS if flag in flags), None)


def _cache_path() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "emobot"
    return root / "bfloat16-probe.json"


def _cache_key(architecture: str, input_size: int) -> str:
    import importlib.metadata

    try:
        tf_version = importlib.metadata.version("tensorflow")
    except importlib.metadata.PackageNotFoundError:
        tf_version = "none"
    machine = f"{cpu_model()}|{' '.join(sorted(cpu_flags()))}|{os.environ.get('TF_ENABLE_ONEDNN_OPTS', '')}"
    digest = hashlib.sha1(machine.encode()).hexdigest()[:12]
    return f"tf{tf_version}-{digest}-{architecture}-{input_size}"


_PROBE = """
import os, sys
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf
from emotion_sensing.face.architectures import build
tf.keras.mixed_precision.set_global_policy("mixed_bfloat16")
model = build(sys.argv[1], int(sys.argv[2]))
model.compile(optimizer="adam", loss="categorical_crossentropy")
x = np.random.default_rng(0).uniform(0, 255, (2, int(sys.argv[2]), int(sys.argv[2]), 1)).astype("float32")
y = np.eye(7, dtype="float32")[[0, 3]]
model.train_on_batch(x, y)
print("bfloat16-ok")
"""


def _run_probe(architecture: str, input_size: int) -> Optional[str]:
    """One training step under the mixed policy in a child process (a CPU without the kernels
    may fail in ways that should not take the caller down). None if it ran, else why not."""
    try:
        done = subprocess.run([sys.executable, "-c", _PROBE, architecture, str(input_size)],
                              capture_output=True, text=True, timeout=PROBE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return f"a bfloat16 training step of {architecture} did not finish in {PROBE_TIMEOUT_S} s"
    if done.returncode == 0 and "bfloat16-ok" in done.stdout:
        return None
    lines = [line.strip() for line in (done.stderr or done.stdout).splitlines() if line.strip()]
    detail = next((line for line in reversed(lines) if "bfloat16" in line.lower()), lines[-1] if lines else "")
    return (f"TensorFlow cannot train {architecture} in bfloat16 on this CPU "
            f"(exit {done.returncode}: {detail[:200]})")


def probe_bfloat16(architecture: str, input_size: int) -> Optional[str]:
    """None if this TensorFlow can train ``architecture`` in bfloat16 here, else the reason.
    Cached; ``EMOBOT_BFLOAT16`` overrides (see the module's docstring)."""
    forced = os.environ.get(FORCE_ENV, "").strip().lower()
    if forced == "unsupported":
        return f"bfloat16 forced off ({FORCE_ENV}=unsupported)"
    if forced == "supported":
        return None
    path, key = _cache_path(), _cache_key(architecture, input_size)
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if key in cache:
        return cache[key] or None
    answer = _run_probe(architecture, input_size)
    cache[key] = answer or ""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(cache, indent=2))
    except OSError:
        pass  # an unwritable cache only costs the probe again
    return answer


def choose_precision(requested: str, architecture: str, input_size: int) -> PrecisionChoice:
    """The precision to train with and why. Raises PrecisionError when ``bfloat16`` is asked
    for explicitly on a machine that cannot run it."""
    if requested not in PRECISIONS:
        raise PrecisionError(f"precision must be one of {', '.join(PRECISIONS)}, not {requested!r}")
    if requested == "float32":
        return PrecisionChoice("float32", "asked for")
    if requested == "bfloat16":
        problem = probe_bfloat16(architecture, input_size)
        if problem:
            raise PrecisionError(f"--precision bfloat16 cannot run here: {problem}; use --precision float32 or auto")
        return PrecisionChoice("bfloat16", "asked for; a probe step ran")
    if architecture not in GAINS_FROM_BFLOAT16:
        return PrecisionChoice("float32", f"{architecture} does not train faster in bfloat16 (measured)")
    flag = native_bfloat16()
    if flag is None:
        return PrecisionChoice("float32", "this CPU has no native bfloat16 instructions (no avx512_bf16 or amx_bf16)")
    problem = probe_bfloat16(architecture, input_size)
    if problem:
        return PrecisionChoice("float32", problem)
    return PrecisionChoice("bfloat16", f"the CPU has {flag} and a bfloat16 training step of {architecture} ran")
