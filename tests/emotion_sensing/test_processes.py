"""A server's start-up heap is frozen out of the garbage collector's full passes."""
from __future__ import annotations

import os
import subprocess
import sys

PROBE = ("import gc; from emotion_sensing.processes import freeze_startup_heap; "
         "big = [[i] for i in range(200_000)]; print(freeze_startup_heap(), gc.get_freeze_count() >= 200_000)")


def _probe(**env: str) -> str:
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, timeout=120,
                          env={**os.environ, **env})
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_the_start_up_heap_is_frozen_unless_turned_off():
    assert _probe() == "True True"
    assert _probe(EMOBOT_GC_FREEZE="0") == "False False"
