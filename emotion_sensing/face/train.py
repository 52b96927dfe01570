"""Train and measure the face networks on FER2013 (``emobot train|eval face``).

Training split (cleaned, see :func:`fer2013.clean_training`) for fitting, PublicTest for
model selection and learning-rate/early-stopping decisions, PrivateTest reported only.
Runs are resumable: the work directory keeps a per-epoch backup, and re-running the same
command continues where it stopped.
"""
from __future__ import annotations

import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import numpy as np

from emotion_sensing.face import fer2013

Printer = Callable[[str], None]
NATIVE_SIZE = 48


def class_weights(labels: np.ndarray, power: float = 0.5, num_classes: int = 7) -> Dict[int, float]:
    """(max count / count) ** power, normalised to a mean of 1 over the samples.

    power 1 is full inverse-frequency balancing; 0.5 lifts disgust (1.5% of rows) without
    trading away much overall accuracy.
    """
    counts = np.bincount(labels, minlength=num_classes).astype(float)
    raw = (counts.max() / np.maximum(counts, 1)) ** power
    mean = float((raw * counts).sum() / counts.sum())
    return {i: float(raw[i] / mean) for i in range(num_classes)}


def _augment_fn(size: int, rotation_deg: float = 15.0, shift: float = 0.1, shear_deg: float = 8.0,
                zoom: float = 0.12):
    """A batched random affine (rotation, shift, shear, zoom, horizontal flip) that also
    rescales 48x48 to ``size`` in the same resampling step."""
    import tensorflow as tf

    def augment(images, labels):
        n = tf.shape(images)[0]
        angle = tf.random.uniform([n], -1.0, 1.0) * math.radians(rotation_deg)
        shear = tf.random.uniform([n], -1.0, 1.0) * math.radians(shear_deg)
        scale = 1.0 + tf.random.uniform([n], -zoom, zoom)
        flip = tf.where(tf.random.uniform([n]) < 0.5, -1.0, 1.0)
        tx = tf.random.uniform([n], -shift, shift) * NATIVE_SIZE
        ty = tf.random.uniform([n], -shift, shift) * NATIVE_SIZE
        # Output pixel (x, y) maps to input (a0 x + a1 y + a2, b0 x + b1 y + b2).
        # Compose about the centre: input = C + R(angle) Sh(shear) diag(flip, 1) / scale * (out - c_out) * s
        s = NATIVE_SIZE / size
        c_in = NATIVE_SIZE / 2.0
        c_out = size / 2.0
        cos, sin, tan = tf.cos(angle), tf.sin(angle), tf.tan(shear)
        k = s / scale
        a0 = (cos * flip) * k
        a1 = (-sin + cos * tan) * k
        b0 = (sin * flip) * k
        b1 = (cos + sin * tan) * k
        a2 = c_in - a0 * c_out - a1 * c_out + tx
        b2 = c_in - b0 * c_out - b1 * c_out + ty
        zeros = tf.zeros([n])
        transforms = tf.stack([a0, a1, a2, b0, b1, b2, zeros, zeros], axis=1)
        out = tf.raw_ops.ImageProjectiveTransformV3(
            images=images, transforms=transforms, output_shape=[size, size],
            interpolation="BILINEAR", fill_mode="REFLECT", fill_value=0.0)
        return out, labels

    return augment


def _strong_fn(size: int, occlusion: float = 0.5, blur: float = 0.3, noise: float = 0.3):
    """Photometric and occlusion augmentation on a batch of 0..255 faces (after the affine):
    gamma, contrast and brightness for lighting; a downscale-upscale for blur and low webcam
    resolution; Gaussian sensor noise; a grey rectangle over part of the face (a hand, glasses,
    a microphone). Each sample draws its own values; blur uses one size per batch."""
    import tensorflow as tf

    def strong(images, labels):
        n = tf.shape(images)[0]
        x = images / 255.0
        gamma = tf.exp(tf.random.uniform([n, 1, 1, 1], -0.4, 0.4))
        x = tf.pow(tf.clip_by_value(x, 1e-4, 1.0), gamma)
        mean = tf.reduce_mean(x, axis=[1, 2, 3], keepdims=True)
        contrast = tf.random.uniform([n, 1, 1, 1], 0.6, 1.4)
        x = (x - mean) * contrast + mean + tf.random.uniform([n, 1, 1, 1], -0.15, 0.15)
        low = tf.random.uniform([], size // 3, (2 * size) // 3 + 1, dtype=tf.int32)
        blurred = tf.image.resize(tf.image.resize(x, tf.stack([low, low])), (size, size))
        x = tf.where(tf.random.uniform([n, 1, 1, 1]) < blur, blurred, x)
        sigma = tf.random.uniform([n, 1, 1, 1], 0.0, 0.05) * tf.cast(tf.random.uniform([n, 1, 1, 1]) < noise, tf.float32)
        x = x + tf.random.normal(tf.shape(x)) * sigma
        # Occlusion: a rectangle of 15-40% of each side, anywhere on the face.
        grid = tf.cast(tf.range(size), tf.float32)
        cy = tf.random.uniform([n, 1, 1, 1], 0, size)
        cx = tf.random.uniform([n, 1, 1, 1], 0, size)
        hy = tf.random.uniform([n, 1, 1, 1], 0.075, 0.2) * size
        hx = tf.random.uniform([n, 1, 1, 1], 0.075, 0.2) * size
        inside = (tf.abs(tf.reshape(grid, [1, -1, 1, 1]) - cy) < hy) & (tf.abs(tf.reshape(grid, [1, 1, -1, 1]) - cx) < hx)
        inside = inside & (tf.random.uniform([n, 1, 1, 1]) < occlusion)
        x = tf.where(inside, tf.random.uniform([n, 1, 1, 1], 0.0, 1.0), x)
        return tf.clip_by_value(x, 0.0, 1.0) * 255.0, labels

    return strong


MIX_MODES = ("mixup", "cutmix", "both")
# Beta(alpha, alpha) draws the mixing share: mixup's paper uses 0.2-0.4 on small images,
# CutMix's 1.0 (a uniform patch area).
MIX_ALPHA = {"mixup": 0.4, "cutmix": 1.0}


def _mix_fn(mode: str, size: int, alpha: Optional[float] = None):
    """Mixes each training batch with a shuffled copy of itself (after augmentation), targets and
    class weights by the same share: ``mixup`` blends whole faces (Zhang et al. 2018), ``cutmix``
    pastes a rectangle of another face (Yun et al. 2019; the share is the rectangle's true area
    after clipping to the image), ``both`` picks one of the two per batch, evenly. One share per
    batch, drawn from Beta(alpha, alpha) (default :data:`MIX_ALPHA` for each)."""
    import tensorflow as tf

    if mode not in MIX_MODES:
        raise ValueError(f"unknown mix mode {mode!r}; known: {', '.join(MIX_MODES)}")

    def beta(a: float):
        g1 = tf.random.gamma([], a)
        g2 = tf.random.gamma([], a)
        return g1 / tf.maximum(g1 + g2, 1e-12)

    def mixup(x, other):
        lam = beta(alpha if alpha is not None else MIX_ALPHA["mixup"])
        return lam * x + (1.0 - lam) * other, lam

    def cutmix(x, other):
        lam = beta(alpha if alpha is not None else MIX_ALPHA["cutmix"])
        side = tf.sqrt(1.0 - lam) * size
        cy = tf.random.uniform([], 0.0, float(size))
        cx = tf.random.uniform([], 0.0, float(size))
        y0, y1 = tf.maximum(cy - side / 2, 0.0), tf.minimum(cy + side / 2, float(size))
        x0, x1 = tf.maximum(cx - side / 2, 0.0), tf.minimum(cx + side / 2, float(size))
        grid = tf.cast(tf.range(size), tf.float32) + 0.5
        rows = (grid >= y0) & (grid < y1)
        cols = (grid >= x0) & (grid < x1)
        inside = tf.reshape(rows, [1, -1, 1, 1]) & tf.reshape(cols, [1, 1, -1, 1])
        pasted = tf.reduce_mean(tf.cast(inside, tf.float32))
        return tf.where(inside, other, x), 1.0 - pasted

    def mix(x, y, w):
        perm = tf.random.shuffle(tf.range(tf.shape(x)[0]))
        other = tf.gather(x, perm)
        if mode == "mixup":
            x, lam = mixup(x, other)
        elif mode == "cutmix":
            x, lam = cutmix(x, other)
        else:
            x, lam = tf.cond(tf.random.uniform([]) < 0.5, lambda: mixup(x, other), lambda: cutmix(x, other))
        y = lam * y + (1.0 - lam) * tf.gather(y, perm)
        w = lam * w + (1.0 - lam) * tf.gather(w, perm)
        return x, y, w

    return mix


def training_data(datasets_dir: Path, aligned: bool = False, wild: Optional[Path] = None,
                  log: Printer = print) -> Dict[str, Any]:
    """The run's arrays: FER2013 splits (aligned or as published), the cleaned training rows,
    and with ``wild`` the in-the-wild training persons added and its validation persons kept
    apart. Returns {"splits": {name: FerSplit}, "train": FerSplit, "dropped": {...},
    "wild_validation": FerSplit or None, "wild_missed": int}."""
    splits = fer2013.load(Path(datasets_dir) / "fer2013")
    if aligned:
        from emotion_sensing.face import aligned_data

        warped = aligned_data.aligned_fer_at(Path(datasets_dir) / "fer2013", splits, log=log)
        for name, (_images, found) in warped.items():
            log(f"FER2013 {name}: landmarks found on {found.mean():.1%} of the crops (the rest as published)")
        # Cleaning compares pixels, so it runs on the published crops and its mask is reused.
        keep, dropped = fer2013.clean_training_rows(splits)
        splits = {name: fer2013.FerSplit(name, warped[name][0], split.labels) for name, split in splits.items()}
        train = fer2013.FerSplit("Training", splits["Training"].images[keep], splits["Training"].labels[keep])
    else:
        train, dropped = fer2013.clean_training(splits)
    out = {"splits": splits, "train": train, "dropped": dropped, "wild_validation": None, "wild_missed": 0}
    if wild is not None:
        from emotion_sensing.face import aligned_data

        if not aligned:
            raise ValueError("the in-the-wild photos are used as aligned faces: train with alignment")
        faces = aligned_data.wild_faces(Path(wild))
        part = faces["train"]
        out["train"] = fer2013.FerSplit("Training", np.concatenate([train.images, part["images"]]),
                                        np.concatenate([train.labels, part["labels"]]))
        val = faces["validation"]
        out["wild_validation"] = fer2013.FerSplit("wild validation", val["images"], val["labels"])
        out["wild_missed"] = int(len(part["missed"]) + len(val["missed"]))
        log(f"in the wild: {len(part['labels'])} training faces of {len(set(part['persons']))} persons added; "
            f"{len(val['labels'])} validation faces of {len(set(val['persons']))} other persons; "
            f"{out['wild_missed']} photos with no face found left out")
    return out


def _resize(images: np.ndarray, size: int):
    import tensorflow as tf

    x = tf.convert_to_tensor(images[..., None], tf.float32)
    return x if size == NATIVE_SIZE else tf.image.resize(x, (size, size), method="bilinear")


def predict_probs(model, images: np.ndarray, size: int, flip_tta: bool = True, batch: int = 256) -> np.ndarray:
    """Class probabilities for 48x48 uint8 faces; averages with the mirrored face when asked."""
    import tensorflow as tf

    infer = tf.function(lambda x: model(x, training=False))
    out = []
    for start in range(0, len(images), batch):
        x = _resize(images[start:start + batch], size)
        p = infer(x)
        if flip_tta:
            p = (p + infer(tf.image.flip_left_right(x))) / 2.0
        out.append(p.numpy())
    return np.concatenate(out) if out else np.zeros((0, 7), np.float32)


def train_face(
    datasets_dir: Path,
    work_dir: Path,
    architecture: str = "ms_model_M",
    input_size: int = 64,
    epochs: int = 100,
    batch_size: int = 64,
    learning_rate: float = 1e-3,
    patience: int = 15,
    weight_power: float = 0.5,
    label_smoothing: float = 0.1,
    log: Printer = print,
    max_minutes: Optional[float] = None,
    lr_patience: int = 4,
    precision: str = "auto",
    aligned: bool = False,
    wild: Optional[Path] = None,
    strong: bool = False,
    teacher: Optional[Path] = None,
    distill_weight: float = 0.7,
    distill_temperature: float = 2.0,
    mix: Optional[str] = None,
    mix_alpha: Optional[float] = None,
) -> Dict[str, Any]:
    """Train one architecture; resumable. Returns the final metrics (also written as JSON).

    The best epoch on PublicTest is kept as ``best.keras`` in ``work_dir``. ``precision``:
    ``float32``, ``bfloat16`` (mixed: bfloat16 compute, float32 weights; twice as fast for
    vgg8 on a CPU with AVX-512 BF16) or ``auto`` (bfloat16 where the network gains and this
    CPU can run it, see precision.py). The exported model is float32 either way. An explicit
    ``bfloat16`` that cannot run here raises PrecisionError before any data is loaded.

    ``aligned``: faces warped onto the landmark template (:mod:`.aligned_data`), as the runtime
    does with CenterFace. ``wild``: the in-the-wild set's folder; its training persons join the
    training rows and its validation persons join PublicTest in the selection metric.
    ``strong``: photometric, blur, noise and occlusion augmentation on top of the affine.
    ``teacher``: a trained run's folder (or its ``best.keras``) to distil from: each training
    face's target becomes ``distill_weight`` x the teacher's probabilities (mirror-averaged,
    softened by ``distill_temperature``) + the rest x its label, and label smoothing is off.
    ``mix``: ``mixup``, ``cutmix`` or ``both`` (:func:`_mix_fn`), last in the augmentation; None: off.
    """
    if mix is not None and mix not in MIX_MODES:
        raise ValueError(f"unknown mix mode {mix!r}; known: {', '.join(MIX_MODES)}")
    if mix_alpha is not None and not mix_alpha > 0:
        raise ValueError(f"mix_alpha must be above 0, got {mix_alpha}")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if architecture == "mini_xception":
        # TF 2.12's oneDNN kernels crash (SIGSEGV) in mini-Xception's backward pass on this CPU.
        os.environ["TF_ENABLE_ONEDNN_OPTS"] = "0"
    import tensorflow as tf

    from emotion_sensing.face.architectures import build
    from emotion_sensing.face.precision import choose_precision
    from emotion_sensing.labels import LABELS

    choice = choose_precision(precision, architecture, input_size)
    precision = choice.precision
    log(f"precision: {precision} ({choice.reason})")
    tf.keras.mixed_precision.set_global_policy("mixed_bfloat16" if precision == "bfloat16" else "float32")
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    data = training_data(datasets_dir, aligned=aligned, wild=wild, log=log)
    splits, train, dropped = data["splits"], data["train"], data["dropped"]
    val = splits["PublicTest"]
    log(f"FER2013: {len(train)} training rows (FER2013 after cleaning, dropped {dropped}"
        f"{', plus in-the-wild persons' if wild else ''}), PublicTest {len(val)}, PrivateTest {len(splits['PrivateTest'])}")
    if data["wild_validation"] is not None:
        # Selection sees both: a checkpoint that wins on FER2013 but loses on real photos is not the best.
        val = fer2013.FerSplit("PublicTest + wild validation", np.concatenate([val.images, data["wild_validation"].images]),
                               np.concatenate([val.labels, data["wild_validation"].labels]))
    weights = class_weights(train.labels, weight_power)
    log("class weights: " + ", ".join(f"{LABELS[i]} {w:.2f}" for i, w in weights.items()))

    sample_w = np.array([weights[int(y)] for y in train.labels], np.float32)
    one_hot = np.eye(7, dtype=np.float32)[train.labels]
    if teacher is not None:
        teacher_path = Path(teacher) / "best.keras" if Path(teacher).is_dir() else Path(teacher)
        if not teacher_path.exists():
            raise FileNotFoundError(f"no teacher checkpoint at {teacher_path}")
        teacher_model = load_float32(teacher_path)
        log(f"distilling from {teacher_path} ({teacher_model.count_params():,} parameters): targets "
            f"{distill_weight:g} x its probabilities at T={distill_temperature:g} + {1 - distill_weight:g} x the label")
        soft = predict_probs(teacher_model, train.images, int(teacher_model.input_shape[1]), flip_tta=True)
        soft = np.exp(np.log(np.clip(soft, 1e-8, None)) / distill_temperature)
        soft /= soft.sum(axis=1, keepdims=True)
        agreement = float((soft.argmax(1) == train.labels).mean())
        log(f"the teacher agrees with {agreement:.1%} of the training labels")
        one_hot = (distill_weight * soft + (1 - distill_weight) * one_hot).astype(np.float32)
        label_smoothing = 0.0
        del teacher_model
    ds = (tf.data.Dataset.from_tensor_slices((train.images[..., None].astype(np.float32), one_hot, sample_w))
          .shuffle(len(train), reshuffle_each_iteration=True)
          .batch(batch_size)
          .map(lambda x, y, w: (*_augment_fn(input_size)(x, y), w), num_parallel_calls=2))
    if strong:
        ds = ds.map(lambda x, y, w: (*_strong_fn(input_size)(x, y), w), num_parallel_calls=2)
    if mix:
        ds = ds.map(_mix_fn(mix, input_size, mix_alpha), num_parallel_calls=2)
    ds = (ds
          .prefetch(2))
    val_x = _resize(val.images, input_size)
    val_y = np.eye(7, dtype=np.float32)[val.labels]

    model = build(architecture, input_size)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(learning_rate),
        loss=tf.keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing),
        metrics=["accuracy"],
    )
    run_settings = {"architecture": architecture, "input_size": input_size, "max_epochs": epochs,
                    "batch_size": batch_size, "learning_rate": learning_rate, "lr_patience": lr_patience,
                    "early_stopping_patience": patience, "class_weight_power": weight_power,
                    "label_smoothing": label_smoothing, "precision": precision, "aligned": aligned,
                    "wild": str(wild) if wild else None, "strong_augmentation": strong,
                    "teacher": str(teacher) if teacher else None,
                    "distill_weight": distill_weight if teacher else None,
                    "distill_temperature": distill_temperature if teacher else None,
                    "mix": mix, "mix_alpha": (mix_alpha if mix_alpha is not None else MIX_ALPHA) if mix else None,
                    "selected_on": "FER2013 PublicTest" + (" + in-the-wild validation persons" if wild else "")}
    (work_dir / "run.json").write_text(json.dumps(run_settings, indent=2))
    log(f"{architecture} at {input_size}x{input_size}: {model.count_params():,} parameters; "
        f"up to {epochs} epochs, batch {batch_size}, {precision}, Adam {learning_rate:g} halved after "
        f"{lr_patience} flat epochs, early stop after {patience}")

    started = time.time()

    class Progress(tf.keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.time()

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            lr = float(tf.keras.backend.get_value(self.model.optimizer.learning_rate))
            log(f"epoch {epoch + 1}/{epochs}  loss {logs.get('loss', 0):.4f}  acc {logs.get('accuracy', 0):.4f}  "
                f"val_acc {logs.get('val_accuracy', 0):.4f}  lr {lr:.2e}  {time.time() - self.t0:.0f} s")
            if max_minutes and (time.time() - started) / 60 > max_minutes:
                log(f"stopping after {max_minutes:g} minutes (resume by running the same command)")
                self.model.stop_training = True

    best_path = work_dir / "best.keras"
    history_path = work_dir / "history.csv"
    backup_dir = work_dir / "backup"
    if any(backup_dir.rglob("checkpoint")):
        log(f"resuming after epoch {_epochs_in(history_path)} from {backup_dir}")
    elif history_path.exists() or best_path.exists():
        # No state to resume from: this is a new run, and it must not append to (or be judged
        # against) an earlier run's history and checkpoint, so those are moved aside.
        stamp = time.strftime("%Y%m%d-%H%M%S")
        for old in (history_path, best_path):
            if old.exists():
                old.rename(old.with_name(f"{old.stem}-{stamp}{old.suffix}"))
        log(f"starting over: nothing to resume in {backup_dir}; the earlier history.csv and best.keras "
            f"are kept as *-{stamp}")
    callbacks = [
        # The backup is kept when training ends (Keras deletes it by default), so a run stopped by
        # --max-minutes, or finished, resumes or extends (a larger --epochs) from its last epoch.
        tf.keras.callbacks.BackupAndRestore(str(backup_dir), delete_checkpoint=False),
        tf.keras.callbacks.ModelCheckpoint(str(best_path), monitor="val_accuracy", save_best_only=True,
                                           initial_value_threshold=_best_so_far(history_path)),
        tf.keras.callbacks.ReduceLROnPlateau(monitor="val_accuracy", factor=0.5, patience=lr_patience, min_lr=1e-5),
        tf.keras.callbacks.EarlyStopping(monitor="val_accuracy", patience=patience),
        tf.keras.callbacks.CSVLogger(str(history_path), append=True),
        Progress(),
    ]
    try:
        model.fit(ds, validation_data=(val_x, val_y), epochs=epochs, callbacks=callbacks, verbose=0)
    finally:
        tf.keras.mixed_precision.set_global_policy("float32")
    log(f"training stopped after {(time.time() - started) / 60:.1f} minutes")

    return evaluate_checkpoint(work_dir, splits, {**run_settings, "training_rows": len(train),
                                                  "dropped_training_rows": dropped},
                               log=log, wild_validation=data["wild_validation"])


def evaluate_checkpoint(work_dir: Path, splits, run: Dict[str, Any], log: Printer = print,
                        wild_validation=None) -> Dict[str, Any]:
    """Score a run's best checkpoint on PublicTest and PrivateTest (plain and mirror-averaged),
    and on the in-the-wild validation persons where the run used them; also written to
    ``result.json`` in the run folder. Works on a run still in progress. ``splits``: the
    run's FER2013 splits, or the datasets folder (then read as the run was trained: aligned
    or not)."""

    from emotion_sensing.evaluation import evaluate
    from emotion_sensing.labels import LABELS

    work_dir = Path(work_dir)
    if (work_dir / "run.json").exists():  # the run's own settings, as train_face recorded them
        run = {**json.loads((work_dir / "run.json").read_text()), **run}
    if not isinstance(splits, dict):
        datasets = Path(splits)
        if run.get("aligned"):
            data = training_data(datasets, aligned=True, wild=Path(run["wild"]) if run.get("wild") else None, log=log)
            splits, wild_validation = data["splits"], data["wild_validation"]
            run = {**run, "training_rows": len(data["train"]), "dropped_training_rows": data["dropped"]}
        else:
            splits = fer2013.load(datasets / "fer2013" if (datasets / "fer2013").is_dir() else datasets)
    if "training_rows" not in run:
        train, dropped = fer2013.clean_training(splits)
        run = {**run, "training_rows": len(train), "dropped_training_rows": dropped}
    best = load_float32(work_dir / "best.keras")
    input_size = int(best.input_shape[1])
    result = {"class_weight_power": 0.5, "label_smoothing": 0.1, "batch_size": 64, **run,
              "input_size": input_size, "parameters": int(best.count_params()),
              "epochs_run": _epochs_in(work_dir / "history.csv"),
              "best_public_val_accuracy": _best_so_far(work_dir / "history.csv")}
    for name in ("PublicTest", "PrivateTest"):
        split = splits[name]
        for tta in (False, True):
            probs = predict_probs(best, split.images, input_size, flip_tta=tta)
            report = evaluate([LABELS[i] for i in split.labels], [LABELS[i] for i in probs.argmax(1)])
            result[f"{name}{'_flip' if tta else ''}"] = report
        log(f"{name}: accuracy {result[name]['accuracy']:.4f}, with mirrored-face averaging "
            f"{result[name + '_flip']['accuracy']:.4f}")
    if wild_validation is not None:
        from emotion_sensing.face.evaluate import wild_summary

        probs = predict_probs(best, wild_validation.images, input_size, flip_tta=True)
        report = evaluate([LABELS[i] for i in wild_validation.labels], [LABELS[i] for i in probs.argmax(1)])
        result["wild_validation_flip"] = {**report, **wild_summary(report)}
        log(f"in-the-wild validation persons: accuracy {report['accuracy']:.4f}, macro-F1 over five "
            f"{result['wild_validation_flip']['macro_f1_five']:.4f}, neutral read as angry "
            f"{result['wild_validation_flip']['neutral_as_angry']:.1%}")
    (work_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result


def load_float32(path: Path):
    """A saved checkpoint as a float32 model (one trained in mixed precision is rebuilt in
    float32 and given its weights), so evaluation scores what the TFLite export runs."""
    import tensorflow as tf

    from emotion_sensing.face.architectures import ARCHITECTURES, build

    model = tf.keras.models.load_model(path, custom_objects=_custom_objects(), compile=False)
    if all(layer.compute_dtype in (None, "float32") for layer in model.layers) or model.name not in ARCHITECTURES:
        return model
    tf.keras.mixed_precision.set_global_policy("float32")
    plain = build(model.name, int(model.input_shape[1]))
    plain.set_weights(model.get_weights())
    return plain


def _custom_objects():
    from emotion_sensing.face.architectures import mish

    return {"mish": mish}


def public_accuracies(history: Path) -> List[float]:
    """PublicTest accuracy after each epoch of a run, from its ``history.csv`` (none yet: [])."""
    if not history.exists():
        return []
    import csv

    with history.open() as handle:
        return [float(r["val_accuracy"]) for r in csv.DictReader(handle) if r.get("val_accuracy")]


def _best_so_far(history: Path) -> Optional[float]:
    values = public_accuracies(history)
    return max(values) if values else None


def _epochs_in(history: Path) -> int:
    if not history.exists():
        return 0
    return max(0, len(history.read_text().strip().splitlines()) - 1)


def export_best(work_dir: Path, models_dir: Path, result: Dict[str, Any]) -> Path:
    """The run's best checkpoint as the shipped TFLite model (+ its JSON), in ``models_dir``."""

    from emotion_sensing.face.export import MODEL_FILE, to_tflite
    from emotion_sensing.labels import LABELS

    model = load_float32(Path(work_dir) / "best.keras")
    trained_on = "FER2013 Training split (cleaned: no rows duplicating the test splits, no duplicates)"
    if result.get("wild"):
        trained_on += " and the in-the-wild set's training persons (split by person)"
    meta = {
        "architecture": result.get("architecture", model.name),
        "input_size": int(model.input_shape[1]),
        "labels": list(LABELS),
        "parameters": int(model.count_params()),
        "preprocessing": "grayscale face crop (Haar box widened 10% per side) -> 48x48 INTER_AREA -> "
                         "input size bilinear; raw 0..255 pixels (the model rescales)",
        "crop_margin": 0.1,
        "flip_average": True,
        "trained_on": trained_on,
        "selected_on": result.get("selected_on", "FER2013 PublicTest"),
    }
    if result.get("aligned"):
        meta["alignment"] = "landmarks"
        meta["preprocessing"] = ("grayscale face warped by its five CenterFace landmarks onto the 48x48 template "
                                 "(emotion_sensing/face/align.py; faces without landmarks: box widened 10% per "
                                 "side) -> input size bilinear; raw 0..255 pixels (the model rescales)")
    if result.get("temperature"):
        meta["temperature"] = result["temperature"]
    return to_tflite(model, Path(models_dir) / MODEL_FILE, meta)


if __name__ == "__main__":  # pragma: no cover - convenience for background runs
    import argparse

    p = argparse.ArgumentParser()
    p.add_argument("--data", default="../shared/datasets")
    p.add_argument("--work", required=True)
    p.add_argument("--architecture", default="ms_model_M")
    p.add_argument("--size", type=int, default=64)
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--max-minutes", type=float)
    p.add_argument("--lr-patience", type=int, default=4)
    p.add_argument("--patience", type=int, default=15)
    p.add_argument("--precision", default="auto")
    p.add_argument("--aligned", action="store_true")
    p.add_argument("--wild")
    p.add_argument("--strong", action="store_true")
    p.add_argument("--teacher")
    a = p.parse_args()
    train_face(Path(a.data), Path(a.work), a.architecture, a.size, a.epochs, max_minutes=a.max_minutes,
               lr_patience=a.lr_patience, patience=a.patience, precision=a.precision,
               aligned=a.aligned or bool(a.wild), wild=Path(a.wild) if a.wild else None, strong=a.strong,
               teacher=Path(a.teacher) if a.teacher else None,
               log=lambda m: print(time.strftime("%H:%M:%S"), m, flush=True))
