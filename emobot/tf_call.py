"""Rasa's TensorFlow predictions (DIET, TED) without tf.function's per-call dispatch
(installed in Rasa's process by rasa_patches).

Rasa 3.6 wraps a model's prediction in a ``tf.function`` with a fixed input signature, so it has
exactly one traced graph, yet every call still canonicalises its inputs and looks the graph up
by their types: py-spy at 50 conversations on the 2-core EPYC put that lookup at half of each
prediction's time. Measured one process, the demo model, 300 calls each: DIET 7.4 -> 5.2 ms,
TED 4.8 -> 2.6 ms per prediction. Here, after Rasa's first call has traced the graph, later
calls convert the inputs as the signature says and run that same graph directly. Inputs that do
not fit the signature (another count, rank, last dimension or a dtype that does not convert) go
through the ``tf.function`` as before, which raises Rasa's own error for them; so does a model
whose graph Rasa traces anew. The outputs are the same tensors (tests/emobot/test_tf_call.py).
``EMOBOT_TF_DIRECT=0`` turns it off.
"""
from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Tuple

from emotion_sensing.processes import switched_off

logger = logging.getLogger(__name__)

_ORIGINAL = None
CALLS: Dict[str, int] = {"direct": 0, "tf.function": 0}  # predictions in this process, by path


def enabled() -> bool:
    return not switched_off("EMOBOT_TF_DIRECT")


def _direct(model: Any) -> Optional[Tuple[Any, Any, list]]:
    """(the tf.function, its one traced graph, the flat input signature), or None."""
    import tensorflow as tf

    function = getattr(model, "_tf_predict_step", None)
    cached = model.__dict__.get("_emobot_direct")
    if cached is not None and cached[0] is function:
        return cached
    signature = getattr(function, "input_signature", None)
    if function is None or signature is None or model._run_eagerly:
        return None
    try:
        concrete = function.get_concrete_function()
        cached = (function, concrete, tf.nest.flatten(signature))
    except Exception:  # not a graph this path knows how to call: Rasa's own call stays
        logger.debug("no direct call for %s", type(model).__name__, exc_info=True)
        cached = (function, None, [])
    model.__dict__["_emobot_direct"] = cached
    return cached


def _fits(flat: list, specs: list) -> bool:
    if len(flat) != len(specs):
        return False
    for value, spec in zip(flat, specs):
        shape = getattr(value, "shape", None)
        if shape is None or len(shape) != spec.shape.rank:
            return False
        last = spec.shape[-1] if spec.shape.rank else None
        if last is not None and shape[-1] != last:
            return False
    return True


def _rasa_predict(self, batch_in: Any) -> Dict[str, Any]:
    if not enabled() or self._tf_predict_step is None or not self.prepared_for_prediction:
        CALLS["tf.function"] += 1
        return _ORIGINAL(self, batch_in)  # the first call traces the graph
    import tensorflow as tf
    from keras.utils import tf_utils
    from rasa.shared.constants import DIAGNOSTIC_DATA

    direct = _direct(self)
    flat = tf.nest.flatten(batch_in)
    if direct is None or direct[1] is None or not _fits(flat, direct[2]):
        CALLS["tf.function"] += 1
        return _ORIGINAL(self, batch_in)
    _function, concrete, specs = direct
    try:
        tensors = [tf.convert_to_tensor(value, dtype=spec.dtype) for value, spec in zip(flat, specs)]
    except (TypeError, ValueError):
        CALLS["tf.function"] += 1
        return _ORIGINAL(self, batch_in)
    self._training = False
    CALLS["direct"] += 1
    outputs = tf_utils.sync_to_numpy_or_python_type(concrete._call_flat(tensors, concrete.captured_inputs))
    if DIAGNOSTIC_DATA in outputs:
        outputs[DIAGNOSTIC_DATA] = self._empty_lists_to_none_in_dict(outputs[DIAGNOSTIC_DATA])
    return outputs


def install() -> None:
    """Every Rasa TF model in this process predicts as above (idempotent)."""
    global _ORIGINAL
    from rasa.utils.tensorflow.models import RasaModel

    if _ORIGINAL is None:
        _ORIGINAL = RasaModel._rasa_predict
        RasaModel._rasa_predict = _rasa_predict


def installed() -> bool:
    return _ORIGINAL is not None
