"""Rasa's TensorFlow models (DIET, TED) load without tracing a training step (installed in
Rasa's process by rasa_patches).

To give a model its weights, Rasa 3.6's ``RasaModel.load`` first fits it on one example
(``model.fit``): Keras traces the whole training function, gradients and optimizer included,
only to create the variables the checkpoint then overwrites. py-spy on one process loading the
demo model: the traced training step took two thirds of the load.

Here the model is built by one eager pass of the same loss on the same example, which creates
the same layers and variables without tracing anything; the checkpoint is then restored as
Rasa restores it, and the first prediction is traced as before. The optimizer's state is not
restored (inference never uses it), so fine-tuning (``rasa train --finetune``), which goes on
training with that state, keeps Rasa's own load, and so does ``EMOBOT_RASA_FAST_LOAD=0``. The
loaded model answers exactly as Rasa's (tests/emobot/test_tf_load.py compares DIET's intent
rankings and TED's action probabilities).

Why that holds for every Rasa TF model (DIET, ResponseSelector, TED, UnexpecTED): a training step
is the loss's forward pass plus the optimizer's update and the loss metric; the forward pass here
creates every layer's variables, and a variable first created later (by the prediction's trace)
is restored when it is created, exactly as after Rasa's own load. Only the optimizer's slots and
the training metric stay unbuilt.
"""
from __future__ import annotations

import logging
import os
from collections import Counter
from typing import Any

logger = logging.getLogger(__name__)

_ORIGINAL = None
FAST_LOADS: Counter = Counter()  # class name -> models loaded here


def _load(cls, model_file_name: str, model_data_example, predict_data_example=None,
          finetune_mode: bool = False, *args: Any, **kwargs: Any):
    if finetune_mode or os.environ.get("EMOBOT_RASA_FAST_LOAD", "1") == "0":
        return _ORIGINAL.__func__(cls, model_file_name, model_data_example, predict_data_example,
                                  finetune_mode, *args, **kwargs)
    import tensorflow as tf
    from rasa.utils.tensorflow.constants import LEARNING_RATE, RUN_EAGERLY
    from rasa.utils.tensorflow.data_generator import RasaBatchDataGenerator

    model = cls(*args, **kwargs)
    config = kwargs.get("config", {})
    model.compile(optimizer=tf.keras.optimizers.Adam(config.get(LEARNING_RATE, 0.001)),
                  run_eagerly=config.get(RUN_EAGERLY))
    batch, _ = RasaBatchDataGenerator(model_data_example, batch_size=1)[0]
    # The training step's forward pass, eagerly: every variable a fit would create.
    model._training = True
    try:
        model.batch_loss(batch)
    finally:
        model._training = None
    model.load_weights(model_file_name).expect_partial()  # the optimizer's slots stay unrestored
    if predict_data_example:
        model.run_inference(predict_data_example)  # trace the prediction now, as Rasa does
    FAST_LOADS[cls.__name__] += 1
    logger.debug("Loaded %s without tracing a training step.", cls.__name__)
    return model


def install() -> None:
    """Replace ``RasaModel.load`` (idempotent)."""
    global _ORIGINAL
    from rasa.utils.tensorflow.models import RasaModel

    if _ORIGINAL is None:
        _ORIGINAL = RasaModel.__dict__["load"]
        RasaModel.load = classmethod(_load)


def installed() -> bool:
    return _ORIGINAL is not None


__all__ = ["install", "installed"]
