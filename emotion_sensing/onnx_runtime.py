"""ONNX Runtime sessions for the recognizers: one place for thread settings and warm-up.

A recognizer answers one message, frame or utterance at a time inside a chat turn, so a
session runs on one intra-op thread by default (two requests then use two cores, instead of
one request fighting itself for both); ``EMOBOT_ONNX_THREADS`` overrides it.
"""
from __future__ import annotations

import os
from typing import Callable, Optional, Union


def threads_default() -> int:
    try:
        return max(1, int(os.environ.get("EMOBOT_ONNX_THREADS", "1")))
    except ValueError:
        return 1


def session(model: Union[bytes, str], threads: Optional[int] = None, warm_up: Optional[Callable] = None):
    """An onnxruntime InferenceSession on the CPU with ``threads`` intra-op threads (default
    :func:`threads_default`), all graph optimisations on; ``warm_up(session)`` runs once so the
    first real request does not pay for allocation."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or threads_default()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    created = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
    if warm_up is not None:
        warm_up(created)
    return created
