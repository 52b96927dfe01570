"""Keras model -> TFLite file plus the JSON that tells the runtime how to feed it."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict

MODEL_FILE = "face_emotion.tflite"
META_FILE = "face_emotion.json"


def to_tflite(model, path: Path, meta: Dict[str, Any]) -> Path:
    """Convert with built-in ops only (no Flex delegate), float32 weights, and write ``meta``
    beside it (architecture, input size, labels, preprocessing)."""
    import tensorflow as tf

    # A fixed batch of one: with a dynamic batch the converter adds shape ops that split
    # the XNNPACK graph and the model runs 4x slower. The runtime feeds faces one by one.
    size = int(model.input_shape[1])
    signature = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, size, size, 1], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([signature], model)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(converter.convert())
    path.with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n")
    return path
