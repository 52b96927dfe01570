"""int8 copies of the face networks, for the runtime.

A float32 vgg8 takes 6.8 ms a pass on one AVX2 core; the same network with int8 weights and
activations (per-channel weights, activation ranges from a few hundred training faces) takes
2.6 ms in TFLite's XNNPACK kernels, and reads faces as well: accuracy within 0.1 point on every
cross-dataset set (``emobot eval face --quantize``). The float32 file stays: it is what a retrained or re-quantized
copy is made from, and ``EMOBOT_FACE_PRECISION=float32`` runs it.

The shipped networks have no Keras checkpoint in the repository, so the float graph is rebuilt in
Keras from the TFLite file itself (:func:`keras_from_tflite`: the plain conv/pool/dense graphs the
export writes) and checked against it before it is quantized.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Callable, Dict, Optional

import numpy as np

Printer = Callable[[str], None]
CALIBRATION_FACES = 500
#: how far the rebuilt Keras graph may drift from the TFLite file it was read from
REBUILD_TOLERANCE = 1e-4


class NotQuantizable(ValueError):
    """The TFLite graph uses an operation :func:`keras_from_tflite` does not rebuild."""


def int8_file(path: Path) -> Path:
    """Where the int8 copy of the network at ``path`` goes: ``x.tflite`` -> ``x.int8.tflite``."""
    path = Path(path)
    return path.with_name(path.name[: -len(".tflite")] + ".int8.tflite")


def keras_from_tflite(path: Path):
    """A Keras model computing what the float TFLite graph at ``path`` computes (rescale, 3x3
    convolutions with ReLU, max pooling, global average, dense, softmax: the vgg8 export), its
    weights copied over. :class:`NotQuantizable` for any other graph or when the two disagree."""
    import tensorflow as tf

    interpreter = tf.lite.Interpreter(
        model_path=str(path), experimental_preserve_all_tensors=True,
        experimental_op_resolver_type=tf.lite.experimental.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    if detail["dtype"] != np.float32:
        raise NotQuantizable(f"{Path(path).name} is not a float32 network")
    const = interpreter.get_tensor
    inputs = tf.keras.Input(tuple(int(d) for d in detail["shape"][1:]))
    x = inputs
    for op in interpreter._get_ops_details():  # noqa: SLF001 - TFLite's only view of the graph
        name, args = op["op_name"], [i for i in op["inputs"] if i >= 0]
        if name in ("MUL", "ADD") and np.size(const(args[1])) == 1:
            value = float(const(args[1]))
            x = x * value if name == "MUL" else x + value
        elif name == "CONV_2D":
            weights, bias = const(args[1]), const(args[2])  # (out, h, w, in) in TFLite
            layer = tf.keras.layers.Conv2D(weights.shape[0], weights.shape[1:3], padding="same", activation="relu")
            x = layer(x)
            layer.set_weights([np.transpose(weights, (1, 2, 3, 0)), bias])
        elif name == "MAX_POOL_2D":
            x = tf.keras.layers.MaxPooling2D(2)(x)
        elif name == "MEAN":
            x = tf.keras.layers.GlobalAveragePooling2D()(x)
        elif name == "FULLY_CONNECTED":
            weights, bias = const(args[1]), const(args[2])
            layer = tf.keras.layers.Dense(weights.shape[0])
            x = layer(x)
            layer.set_weights([weights.T, bias])
        elif name == "SOFTMAX":
            x = tf.keras.layers.Softmax()(x)
        else:
            raise NotQuantizable(f"{Path(path).name}: cannot rebuild its {name} operation in Keras")
    model = tf.keras.Model(inputs, x)
    # The rebuild assumes ReLU after each convolution and "same" padding: check it on inputs
    # spanning the pixel range, against the file itself.
    probe = np.random.default_rng(0).uniform(0, 255, (4, *inputs.shape[1:])).astype(np.float32)
    expected = []
    for face in probe:
        interpreter.set_tensor(detail["index"], face[None])
        interpreter.invoke()
        expected.append(interpreter.get_tensor(interpreter.get_output_details()[0]["index"])[0])
    drift = float(np.abs(model(probe, training=False).numpy() - np.array(expected)).max())
    if drift > REBUILD_TOLERANCE:
        raise NotQuantizable(f"{Path(path).name}: the rebuilt graph differs from the file by {drift:.2g}")
    return model


def quantize(path: Path, faces: np.ndarray, out: Optional[Path] = None) -> Path:
    """Write the int8 copy of the float network at ``path`` (float input and output, so the
    runtime feeds it as before), its activation ranges taken from ``faces`` (n, size, size) as
    that network takes them, and their mirror images."""
    import tensorflow as tf

    model = keras_from_tflite(path)
    faces = np.asarray(faces, np.float32)
    if faces.ndim != 3 or len(faces) == 0:
        raise ValueError("calibration faces must be a non-empty (n, size, size) array")

    def representative():
        for face in faces:
            yield [face[None, :, :, None]]
            yield [np.ascontiguousarray(face[:, ::-1])[None, :, :, None]]

    size = int(model.input_shape[1])
    signature = tf.function(lambda x: model(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, size, size, 1], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([signature], model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    out = Path(out) if out is not None else int8_file(path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_bytes(converter.convert())
    tmp.replace(out)
    return out


def calibration_faces(datasets_dir: Path, aligned: bool, n: int = CALIBRATION_FACES, seed: int = 0,
                      log: Optional[Printer] = None) -> np.ndarray:
    """``n`` FER2013 Training faces (the cleaned rows the networks trained on; never a test
    split), warped by their landmarks for a network trained on aligned faces, else as published."""
    from emotion_sensing.face import fer2013

    source = fer2013.find_csv(Path(datasets_dir))
    splits = fer2013.load(source)
    keep, _ = fer2013.clean_training_rows(splits)
    images = splits["Training"].images
    if aligned:
        from emotion_sensing.face import aligned_data

        images = aligned_data.aligned_fer_at(source, splits, log=log)["Training"][0]
    rows = np.flatnonzero(keep)
    chosen = np.sort(np.random.default_rng(seed).choice(rows, min(n, len(rows)), replace=False))
    return images[chosen]


def quantize_model(model_path: Path, datasets_dir: Path, n: int = CALIBRATION_FACES,
                   log: Optional[Printer] = None) -> Dict:
    """An int8 copy of the model at ``model_path`` and of every network its JSON averages with it,
    each calibrated on ``n`` FER2013 Training faces prepared its way; each network's JSON gains
    ``"int8": {"file", "calibration"}``, which the runtime reads. Returns what was written."""
    from emotion_sensing.face.recognizer import network_paths, read_meta

    written = []
    for path in network_paths(model_path):
        if not path.exists():
            raise FileNotFoundError(f"face network not found: {path}")
        network_meta = read_meta(path)
        aligned = network_meta.get("alignment") == "landmarks"
        if log:
            log(f"quantizing {path.name} to int8 on {n} FER2013 Training faces"
                f" ({'aligned' if aligned else 'box crops'}) and their mirror images")
        out = quantize(path, calibration_faces(datasets_dir, aligned, n, log=log))
        network_meta["int8"] = {
            "file": out.name,
            "calibration": f"{n} FER2013 Training faces (cleaned rows, seed 0), "
                           f"{'aligned' if aligned else 'box crops'}, and their mirror images",
        }
        path.with_suffix(".json").write_text(json.dumps(network_meta, indent=2) + "\n")
        written.append({"file": path.name, "int8_file": out.name, "aligned": aligned,
                        "float32_kb": round(path.stat().st_size / 1024), "int8_kb": round(out.stat().st_size / 1024)})
        if log:
            log(f"  wrote {out} ({out.stat().st_size / 1024:.0f} KB; float32 {path.stat().st_size / 1024:.0f} KB)")
    return {"calibration_faces": n, "networks": written}

