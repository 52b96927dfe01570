"""The load generator's bookkeeping: which events answer a frame, and who used the CPU."""
from __future__ import annotations

import os
import subprocess
import sys
import time

from emobot.load import CpuMeter, answers_frame, stream_messages


def test_only_a_frame_s_own_answer_releases_the_next_frame():
    assert answers_frame({"type": "reading", "reading": {"modality": "face"}})
    assert answers_frame({"type": "no_face"}) and answers_frame({"type": "dropped", "modality": "face"})
    assert answers_frame({"type": "error", "code": "rate_limited"})
    # The worker drops utterances too, and voice readings arrive on the same socket.
    assert not answers_frame({"type": "dropped", "modality": "voice"})
    assert not answers_frame({"type": "reading", "reading": {"modality": "voice"}})
    assert not answers_frame({"type": "state"})


def test_frames_and_audio_are_framed_once():
    frame, chunks = stream_messages(b"jpeg", bytes(16_000 * 2))
    assert frame == b"\x01jpeg"
    assert len(chunks) == 4 and all(c[:1] == b"\x02" and len(c) == 1 + 8000 for c in chunks)  # 250 ms each


def _cpu_s_of(pid: int) -> float:
    """User + system CPU seconds of a process, read from /proc here (not through emobot.load)."""
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_the_meter_counts_a_busy_process_and_this_one():
    # Each side works until it has had its CPU time, however busy the machine is (a fixed
    # wall-clock wait failed on a 2-core machine while other jobs ran).
    busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)
        meter = CpuMeter({"busy": busy.pid})
        busy_start, mine_start, deadline = _cpu_s_of(busy.pid), time.process_time(), time.monotonic() + 60
        while time.process_time() - mine_start < 0.3 and time.monotonic() < deadline:  # this process works too
            pass
        while _cpu_s_of(busy.pid) - busy_start < 0.6 and time.monotonic() < deadline:
            time.sleep(0.05)
        used = meter.stop()
    finally:
        busy.kill()
        busy.wait(timeout=10)
    assert used["cores"] == (os.cpu_count() or 1)
    assert used["load_generator"]["cpu_s"] >= 0.2
    assert used["processes"]["busy"]["cpu_s"] >= 0.4
    assert used["processes"]["busy"]["waited_for_cpu_s"] >= 0.0
