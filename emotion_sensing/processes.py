"""Free loopback ports, child processes that die with their parent, and a server's start-up
heap kept out of the garbage collector's full passes.

Standard library only: emobot.front imports it and stays a small process (about 30 MB) that
loads neither NumPy nor Rasa.
"""
from __future__ import annotations

import ctypes
import gc
import os
import signal
import socket
import sys
from typing import Callable, Optional

_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def _prctl():
    """libc's prctl; None off Linux."""
    if sys.platform != "linux":
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


def _end_with(prctl, parent: int) -> None:
    prctl(_PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    if os.getppid() != parent:  # the parent died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)


def die_with_parent_hook() -> Optional[Callable[[], None]]:
    """A ``preexec_fn`` for subprocess.Popen: the kernel sends the child SIGTERM when the process
    that started it dies, however it dies (SIGKILL included). Call it in the parent (looking up
    prctl after fork can deadlock); None off Linux. The child dies with the *thread* that
    started it, so start children from one that lives as long as they should (the main thread)."""
    prctl, parent = _prctl(), os.getpid()
    return (lambda: _end_with(prctl, parent)) if prctl else None


def die_with_parent() -> None:
    """The same, called in the child itself (a multiprocessing worker's initializer)."""
    prctl = _prctl()
    if prctl is not None:
        _end_with(prctl, os.getppid())


def switched_off(variable: str) -> bool:
    """Whether the on-by-default switch ``variable`` is set to 0, false, no or off."""
    return os.environ.get(variable, "1").strip().lower() in ("0", "false", "no", "off")


def freeze_startup_heap() -> bool:
    """Collect once, then exempt every object alive now from later collections (``gc.freeze``).

    A server's models and modules (Rasa's process: about 600,000 tracked objects) live as long as
    the process, yet each full collection walks them all: measured in a Rasa process at 100
    conversations on the 2-core EPYC, 350-730 ms a pass, five passes in two minutes, each one
    stalling every turn that process was handling. After the freeze a full pass walks only what
    was allocated since. Objects freed by reference counting are freed as before; only reference
    cycles among start-up objects stay. ``EMOBOT_GC_FREEZE=0`` turns it off. Returns whether it froze.
    """
    if switched_off("EMOBOT_GC_FREEZE"):
        return False
    gc.collect()
    gc.freeze()
    return True
